package secrets

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// suffixPassword + USER keys a static user's password in the store, next to the htpasswd file
// of component/name: users sign in with it, the file holds its bcrypt hash only.
const suffixPassword = ".password."

// HtpasswdPasswordKey is where the store keeps user's password for component/name's htpasswd
// file, for messages telling the operator where to read or change it.
func HtpasswdPasswordKey(component, name, user string) string {
	return component + "/" + name + suffixPassword + user
}

// EnsureHtpasswd makes component/name an htpasswd file of users (bcrypt), each with a password
// generated once into the store, and returns its placeholder. A stored hash is kept while it
// matches its user's password, so a repeated generate changes nothing (bcrypt salts every hash
// anew), and a password the operator changed in secrets.yaml gets a new hash. Users no longer
// listed lose their line and their password.
func (s *Store) EnsureHtpasswd(component, name string, users []string) (string, error) {
	key := component + "/" + name
	var errs []error
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u == "" || strings.ContainsAny(u, ":\r\n"):
			errs = append(errs, fmt.Errorf("htpasswd %s: user name %q must be non-empty, without ':' or line breaks", key, u))
		case seen[u]:
			errs = append(errs, fmt.Errorf("htpasswd %s: user %q is listed twice", key, u))
		}
		seen[u] = true
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	hashes := map[string]string{}
	for _, line := range strings.Split(s.values[key], "\n") {
		if u, h, ok := strings.Cut(line, ":"); ok {
			hashes[u] = h
		}
	}
	var file strings.Builder
	for _, u := range users {
		pwKey := HtpasswdPasswordKey(component, name, u)
		if _, ok := s.values[pwKey]; !ok {
			if _, err := s.Ensure(component, name+suffixPassword+u); err != nil {
				return "", err
			}
		}
		pw := s.values[pwKey]
		h, ok := hashes[u]
		if !ok || bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)) != nil {
			b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
			if err != nil {
				return "", fmt.Errorf("htpasswd %s: hash the password of %s: %w", key, u, err)
			}
			h = string(b)
		}
		fmt.Fprintf(&file, "%s:%s\n", u, h)
	}
	if s.values[key] != file.String() {
		s.values[key] = file.String()
		s.dirty = true
	}
	prefix := key + suffixPassword
	for _, k := range slices.Sorted(maps.Keys(s.values)) {
		if u, ok := strings.CutPrefix(k, prefix); ok && !seen[u] {
			delete(s.values, k)
			s.dirty = true
		}
	}
	return Placeholder(component, name), nil
}
