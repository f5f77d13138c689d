package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bind is one bind mount inside the process's mount namespace.
type bind struct{ src, dst string }

// sandboxScript is the shell script that runs inside a new private mount
// namespace (util-linux unshare --mount --propagation private) and then execs
// the program: /etc/hosts is replaced by hostsFile, /tmp by an empty tmpfs,
// and each bind is mounted. The private /tmp keeps the paths listed in keep
// (directories under /tmp the harness itself uses, such as the test's
// temporary directory holding the process's files and binary): a tmpfs is
// mounted inside the first of them, the kept directories are bound into it
// at their own paths, and it is then moved onto /tmp.
func sandboxScript(hostsFile string, keep []string, binds []bind) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("set -e")
	w("mount --bind %s /etc/hosts", shq(hostsFile))
	var under []string
	for _, k := range keep {
		if strings.HasPrefix(k, "/tmp/") {
			under = append(under, k)
		}
	}
	if len(under) == 0 {
		w("mount -t tmpfs -o mode=1777 harness-tmp /tmp")
	} else {
		// The staging mount point must exist outside the future /tmp view
		// but already be visible: a directory of the first kept path.
		stage := filepath.Join(under[0], ".harness-tmp")
		w("mkdir -p %s", shq(stage))
		w("mount -t tmpfs -o mode=1777 harness-tmp %s", shq(stage))
		for _, k := range under {
			in := filepath.Join(stage, strings.TrimPrefix(k, "/tmp/"))
			w("mkdir -p %s", shq(in))
			w("mount --bind %s %s", shq(k), shq(in))
		}
		w("mount --move %s /tmp", shq(stage))
	}
	for _, bd := range binds {
		if strings.HasPrefix(bd.dst, "/tmp/") || bd.dst == "/tmp" {
			// Inside the private tmpfs: create the mount point freely.
			w("mkdir -p %s", shq(bd.dst))
		}
		w("mount --bind %s %s", shq(bd.src), shq(bd.dst))
	}
	w(`exec "$@"`)
	return b.String()
}

// canBind tells whether dst can serve as a bind mount point without creating
// anything on the host: it exists as a directory, or lies under /tmp (which is
// private to the process).
func canBind(dst string) bool {
	if dst == "/tmp" || strings.HasPrefix(dst, "/tmp/") {
		return dst != "/tmp"
	}
	st, err := os.Stat(dst)
	return err == nil && st.IsDir()
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
