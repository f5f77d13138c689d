//go:build conformance

package mariadb

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServer fetches MariaDB (once per cache), starts it, and logs in over TCP as a user it
// created, as an application would.
func TestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in := fetched(ctx, t)
	s, err := in.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := s.CreateDatabase(ctx, "katib", "katib", "it's a secret"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, in.bin("bin/mariadb"), "--no-defaults", "-h", "127.0.0.1", "-P", itoa(s.Port), "-u", "katib", "-D", "katib", "--batch", "-e", "SELECT DATABASE(), CURRENT_USER()")
	cmd.Env = append(in.env(), "MYSQL_PWD=it's a secret")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("log in as katib over TCP: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "katib\tkatib@%") {
		t.Errorf("SELECT DATABASE(), CURRENT_USER() = %q, want katib and katib@%%", out)
	}
	cmd = exec.CommandContext(ctx, in.bin("bin/mariadb"), "--no-defaults", "-h", "127.0.0.1", "-P", itoa(s.Port), "-u", "katib", "-e", "SELECT 1")
	cmd.Env = append(in.env(), "MYSQL_PWD=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Access denied") {
		t.Errorf("a wrong password was not refused: %v: %s", err, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// fetched is the MariaDB install of the default cache, fetched there once.
func fetched(ctx context.Context, t *testing.T) Install {
	t.Helper()
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Fetch(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
