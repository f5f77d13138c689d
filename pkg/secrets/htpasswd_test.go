package secrets

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// htpasswdOf parses the stored file: user → hash, in order.
func htpasswdOf(t *testing.T, s *Store, key string) ([]string, map[string]string) {
	t.Helper()
	var users []string
	hashes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(s.values[key], "\n"), "\n") {
		u, h, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("htpasswd line %q has no ':'", line)
		}
		users = append(users, u)
		hashes[u] = h
	}
	return users, hashes
}

func TestHtpasswdKeptChangedAndPruned(t *testing.T) {
	s, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ph, err := s.EnsureHtpasswd("gateway", "htpasswd", []string{"admin", "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if ph != "kfdeploy-secret:gateway/htpasswd" || !HasPlaceholder(ph) {
		t.Errorf("placeholder %q", ph)
	}
	users, hashes := htpasswdOf(t, s, "gateway/htpasswd")
	if strings.Join(users, ",") != "admin,alice@example.com" {
		t.Errorf("users %v", users)
	}
	for _, u := range users {
		pw := s.values[HtpasswdPasswordKey("gateway", "htpasswd", u)]
		if len(pw) < 32 {
			t.Errorf("%s: generated password %q too short", u, pw)
		}
		if !strings.HasPrefix(hashes[u], "$2") || bcrypt.CompareHashAndPassword([]byte(hashes[u]), []byte(pw)) != nil {
			t.Errorf("%s: hash %q is not the bcrypt hash of the stored password", u, hashes[u])
		}
	}

	// Again: nothing changes (a new salt would change the file on every generate).
	before := s.values["gateway/htpasswd"]
	s.dirty = false
	if _, err := s.EnsureHtpasswd("gateway", "htpasswd", []string{"admin", "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	if s.values["gateway/htpasswd"] != before || s.dirty {
		t.Error("a repeated EnsureHtpasswd changed the file")
	}

	// The operator changes alice's password in secrets.yaml: her hash follows, admin's stays.
	s.values[HtpasswdPasswordKey("gateway", "htpasswd", "alice@example.com")] = "correct horse battery staple"
	if _, err := s.EnsureHtpasswd("gateway", "htpasswd", []string{"admin", "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, after := htpasswdOf(t, s, "gateway/htpasswd")
	if after["admin"] != hashes["admin"] {
		t.Error("admin's hash changed though its password did not")
	}
	if bcrypt.CompareHashAndPassword([]byte(after["alice@example.com"]), []byte("correct horse battery staple")) != nil {
		t.Error("alice's hash does not match her new password")
	}

	// alice leaves: her line and her password go.
	if _, err := s.EnsureHtpasswd("gateway", "htpasswd", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	if users, _ := htpasswdOf(t, s, "gateway/htpasswd"); strings.Join(users, ",") != "admin" {
		t.Errorf("users %v after removing alice", users)
	}
	if _, ok := s.values[HtpasswdPasswordKey("gateway", "htpasswd", "alice@example.com")]; ok {
		t.Error("alice's password stayed in the store")
	}
}

func TestHtpasswdRefusesBadNames(t *testing.T) {
	s, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, users := range [][]string{{"a:b"}, {""}, {"a\nb"}, {"a", "a"}} {
		if _, err := s.EnsureHtpasswd("gateway", "htpasswd", users); err == nil {
			t.Errorf("users %q accepted", users)
		}
	}
}
