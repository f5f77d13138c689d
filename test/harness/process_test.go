package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessLogs(t *testing.T) {
	dir := t.TempDir()
	p := &Process{Name: "sh", Dir: dir, LogPath: filepath.Join(dir, "sh.log")}
	// A child in the background checks that Stop ends the whole group.
	cmd := exec.Command("/bin/sh", "-c", `sleep 300 & echo "child $!"; echo starting; echo 'E1201 reflector.go: pods is Forbidden: User "x" cannot list' >&2; echo ready; exec sleep 300`)
	if err := p.start(cmd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l, err := p.WaitLog(ctx, regexp.MustCompile(`^ready$`)); err != nil || l != "ready" {
		t.Fatalf("WaitLog: %q, %v", l, err)
	}
	child, err := p.WaitLog(ctx, regexp.MustCompile(`^child `))
	if err != nil {
		t.Fatal(err)
	}
	// stderr is read apart from stdout: wait for its line too.
	if _, err := p.WaitLog(ctx, regexp.MustCompile(`reflector`)); err != nil {
		t.Fatal(err)
	}
	if f := p.Forbidden(); len(f) != 1 || !strings.Contains(f[0], "is Forbidden") {
		t.Errorf("Forbidden() = %q, want the one refused request", f)
	}
	p.Stop(2 * time.Second)
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimPrefix(child, "child "), &pid); err != nil {
		t.Fatal(err)
	}
	// The background child is killed with its group (it may linger as a
	// zombie of the test process until reaped: check it is not sleeping).
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the process survived Stop", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil || !strings.Contains(string(b), "starting\n") || !strings.Contains(string(b), "is Forbidden") {
		t.Errorf("log file %s: %q, %v; want stdout and stderr", p.LogPath, b, err)
	}
	if _, err := p.WaitLog(ctx, regexp.MustCompile(`never`)); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitLog after exit: %v, want an error saying the process exited", err)
	}
}

// alive: the pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestSandbox(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("util-linux unshare not installed")
	}
	if err := exec.Command("unshare", "--mount", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("no mount namespaces here (needs CAP_SYS_ADMIN): %v", err)
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.96.0.10 db.ns.svc.cluster.local db.ns.svc db.ns db\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "config"), []byte("mounted"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(os.TempDir(), "harness-sandbox-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.Remove(marker) })
	box := &sandbox{hostsFile: hosts, work: dir, keep: []string{dir}}
	// Under the private /tmp; in a missing directory of /etc (overlaid); as
	// a file in a missing directory; a path directly under / cannot be.
	for _, b := range []struct {
		src, dst string
		file     bool
		want     bool
	}{
		{vol, "/tmp/app/config-dir", false, true},
		{vol, "/etc/harness-test-" + strconv.Itoa(os.Getpid()) + "/conf.d", false, true},
		{filepath.Join(vol, "config"), "/etc/harness-test-" + strconv.Itoa(os.Getpid()) + "/one/config", true, true},
		{vol, "/harness-test-" + strconv.Itoa(os.Getpid()), false, false},
	} {
		if got := box.plan(b.src, b.dst, b.file); got != b.want {
			t.Errorf("plan %s: %v, want %v", b.dst, got, b.want)
		}
	}
	if len(box.overlays) != 1 || box.overlays[0] != "/etc" {
		t.Errorf("overlays %v, want [/etc]", box.overlays)
	}
	script := box.script()
	etc := "/etc/harness-test-" + strconv.Itoa(os.Getpid())
	// The program: reads the hosts file, the bound volumes, a file of the
	// kept directory, and writes into the private /tmp.
	prog := `cat /etc/hosts; cat /tmp/app/config-dir/config; echo; cat "$1/vol/config"; echo; cat "$3/conf.d/config" "$3/one/config"; echo; touch "$2"; ls /tmp/app`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
		"/bin/sh", "-c", prog, "sh", dir, marker, etc).CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox: %v\n%s\nscript:\n%s", err, out, script)
	}
	for _, want := range []string{"db.ns.svc.cluster.local", "mounted\nmounted\nmountedmounted\n", "config-dir"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s was written to the host's /tmp, not the private one", marker)
	}
	if _, err := os.Stat(etc); err == nil {
		t.Errorf("%s was created on the host, not in the overlay", etc)
	}
	if b, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(b), "db.ns.svc.cluster.local") {
		t.Error("the host's /etc/hosts changed")
	}
}
