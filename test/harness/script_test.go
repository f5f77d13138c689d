package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHarnessScript builds a tiny tool module (no dependencies: no download)
// with scripts/harness.sh: listed binaries are built with their ldflags and
// env words, prepare runs once, a second build is a no-op, a change to the
// module's files rebuilds, path prints the binary.
func TestHarnessScript(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	script, err := filepath.Abs("../../scripts/harness.sh")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mod := filepath.Join(root, "tools", "hello")
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mod, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/hello\n\ngo 1.22\n", 0o644)
	write("go.sum", "", 0o644)
	write("main.go", "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(\"hello\", version) }\n", 0o644)
	write("harness.list", "# test binaries\n\nhello example.test/hello -X main.version=v1.2.3\nhello-cgo example.test/hello env:CGO_ENABLED=1\n", 0o644)
	write("prepare", "#!/bin/sh\nset -e\nmkdir -p _work\necho run >> _work/prepared\n", 0o755)
	cache := filepath.Join(root, "cache")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "KFDEPLOY_HARNESS_TOOLS="+filepath.Join(root, "tools"), "KFDEPLOY_HARNESS_DIR="+cache)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("harness.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("build")
	if !strings.Contains(out, "built hello in") || !strings.Contains(out, "built hello-cgo in") {
		t.Errorf("first build logs no build times:\n%s", out)
	}
	got, err := exec.Command(filepath.Join(cache, "hello")).Output()
	if err != nil || strings.TrimSpace(string(got)) != "hello v1.2.3" {
		t.Errorf("built hello prints %q, %v; want the ldflags version", got, err)
	}
	if out := run("build"); !strings.Contains(out, "all 2 binaries cached") {
		t.Errorf("second build is not a no-op:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(mod, "_work", "prepared")); string(b) != "run\n" {
		t.Errorf("prepare ran %q times, want once", b)
	}
	if p := strings.TrimSpace(run("path", "hello")); p != filepath.Join(cache, "hello") {
		t.Errorf("path hello = %q", p)
	}
	// A change of the module (here a file prepare could read) rebuilds.
	write("patches/fix.patch", "x\n", 0o644)
	if out := run("build", "hello"); !strings.Contains(out, "built hello in") || strings.Contains(out, "hello-cgo") {
		t.Errorf("build hello after a change did not rebuild hello alone:\n%s", out)
	}
	cmd := exec.Command(script, "path", "nope")
	cmd.Env = append(os.Environ(), "KFDEPLOY_HARNESS_TOOLS="+filepath.Join(root, "tools"), "KFDEPLOY_HARNESS_DIR="+cache)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no binary nope") {
		t.Errorf("path of an unlisted binary: %v, %s; want a clear error", err, out)
	}
}
