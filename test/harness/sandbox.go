package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// bind is one bind mount inside the process's mount namespace.
type bind struct {
	src, dst string
	// file: src is a file (a subPath mount of one key).
	file bool
}

// sandbox is the mount setup of one process.
type sandbox struct {
	hostsFile string
	// work is a directory of the harness's own (the process directory):
	// the overlays' upper layers live in a tmpfs mounted inside it.
	work string
	// keep lists directories under /tmp that must stay visible in the
	// private /tmp (the process directory, the binary's directory).
	keep []string
	// overlays are host directories overlaid with a private writable layer,
	// so that missing mount points can be created inside them without
	// touching the host.
	overlays []string
	binds    []bind
}

// plan adds a bind mount of src at dst when possible without creating
// anything on the host: dst exists (as a directory, or as a file for a file),
// lies under /tmp (private), or has an existing ancestor other than / that is
// then overlaid (e.g. /etc for /etc/app/config). It reports whether dst will
// be mounted; if not, only the path rewriting of args and env applies.
func (s *sandbox) plan(src, dst string, file bool) bool {
	dst = filepath.Clean(dst)
	if !filepath.IsAbs(dst) || dst == "/" || dst == "/tmp" || dst == "/etc/hosts" {
		return false
	}
	if st, err := os.Stat(dst); err == nil {
		if st.IsDir() == file {
			return false // a directory where a file goes, or the reverse
		}
	} else if !strings.HasPrefix(dst, "/tmp/") {
		anc := filepath.Dir(dst)
		for {
			if st, err := os.Stat(anc); err == nil {
				if !st.IsDir() {
					return false
				}
				break
			}
			anc = filepath.Dir(anc)
		}
		if anc == "/" {
			return false
		}
		real, err := filepath.EvalSymlinks(anc)
		if err != nil || real == "/" || real == "/tmp" || strings.HasPrefix(real, "/tmp/") {
			return false
		}
		s.addOverlay(real)
	}
	s.binds = append(s.binds, bind{src: src, dst: dst, file: file})
	return true
}

func (s *sandbox) addOverlay(dir string) {
	for _, o := range s.overlays {
		if o == dir {
			return
		}
	}
	s.overlays = append(s.overlays, dir)
}

// script is the shell script that runs inside a new private mount namespace
// (util-linux unshare --mount --propagation private) and then execs the
// program ("$@"):
//  1. the overlays (a tmpfs in the work directory holds their upper layers);
//  2. /etc/hosts replaced by the hosts file;
//  3. /tmp replaced by an empty tmpfs; kept directories under /tmp stay
//     visible: the tmpfs is first mounted inside the work directory, the kept
//     directories are bound into it at their own paths, and it is then moved
//     onto /tmp;
//  4. each bind, creating its mount point first when missing (inside an
//     overlay or the private /tmp).
func (s *sandbox) script() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("set -e")
	if len(s.overlays) > 0 {
		layers := filepath.Join(s.work, ".overlays")
		w("mkdir -p %s", shq(layers))
		w("mount -t tmpfs harness-overlays %s", shq(layers))
		ovs := append([]string(nil), s.overlays...)
		sort.Strings(ovs) // parents before children
		for i, o := range ovs {
			up, wk := filepath.Join(layers, strconv.Itoa(i), "upper"), filepath.Join(layers, strconv.Itoa(i), "work")
			w("mkdir -p %s %s", shq(up), shq(wk))
			w("mount -t overlay harness-overlay -o %s %s", shq("lowerdir="+o+",upperdir="+up+",workdir="+wk), shq(o))
		}
	}
	w("mount --bind %s /etc/hosts", shq(s.hostsFile))
	var under []string
	for _, k := range s.keep {
		if strings.HasPrefix(k, "/tmp/") {
			under = append(under, k)
		}
	}
	if len(under) == 0 {
		w("mount -t tmpfs -o mode=1777 harness-tmp /tmp")
	} else {
		stage := filepath.Join(s.work, ".tmp")
		w("mkdir -p %s", shq(stage))
		w("mount -t tmpfs -o mode=1777 harness-tmp %s", shq(stage))
		for _, k := range under {
			in := filepath.Join(stage, strings.TrimPrefix(k, "/tmp/"))
			w("mkdir -p %s", shq(in))
			w("mount --bind %s %s", shq(k), shq(in))
		}
		w("mount --move %s /tmp", shq(stage))
	}
	for _, bd := range s.binds {
		if bd.file {
			w("[ -e %[1]s ] || { mkdir -p %[2]s && : > %[1]s; }", shq(bd.dst), shq(filepath.Dir(bd.dst)))
		} else {
			w("mkdir -p %s", shq(bd.dst))
		}
		w("mount --bind %s %s", shq(bd.src), shq(bd.dst))
	}
	w(`exec "$@"`)
	return b.String()
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
