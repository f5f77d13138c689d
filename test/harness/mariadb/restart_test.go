//go:build conformance

package mariadb

import (
	"context"
	"testing"
	"time"
)

// TestRestartKeepsData: a server started again on the data directory of an earlier one finds
// its databases, users and rows (nothing re-initialised), and Query signs in over TCP with the
// user's password and refuses a wrong one.
func TestRestartKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in := fetched(ctx, t)
	dir := t.TempDir()
	s, err := in.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(ctx, "katib", "katib", `it's "secret"`); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Query(ctx, s.Addr(), "katib", `it's "secret"`, "katib", "CREATE TABLE t (id INT); INSERT INTO t VALUES (7);"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s, err = in.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	got, err := in.Query(ctx, s.Addr(), "katib", `it's "secret"`, "katib", "SELECT id FROM t;")
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got != "7\n" {
		t.Errorf("after the restart: rows %q, want \"7\\n\"", got)
	}
	if _, err := in.Query(ctx, s.Addr(), "katib", "wrong", "katib", "SELECT 1;"); err == nil {
		t.Error("a wrong password was not refused")
	}
}
