// Package secrets keeps the app's generated passwords and certificates: created once, stored in the app
// directory with mode 0600, and substituted into Secret objects only at apply time, so that
// manifests never hold them in clear.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/fsutil"
)

// FileName is the store inside the app directory.
const FileName = "secrets.yaml"

// placeholderPrefix starts every placeholder; the rest is component/name.
const placeholderPrefix = "kfdeploy-secret:"

var placeholderRE = regexp.MustCompile(`kfdeploy-secret:([a-z0-9-]+/[A-Za-z0-9._-]+)`)

// Placeholder is what a component's manifests hold in place of the secret's value.
func Placeholder(component, name string) string { return placeholderPrefix + component + "/" + name }

// Store maps "component/name" to a generated value.
type Store struct {
	path   string
	values map[string]string
	dirty  bool
}

// Load reads appDir/secrets.yaml; a missing file is an empty store.
func Load(appDir string) (*Store, error) {
	s := &Store{path: filepath.Join(appDir, FileName), values: map[string]string{}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	if err := yaml.UnmarshalStrict(data, &s.values); err != nil {
		return nil, fmt.Errorf("%s: %w (expected a map of component/name: value)", s.path, err)
	}
	return s, nil
}

// Ensure returns the placeholder for component/name, generating and remembering a random value
// the first time.
func (s *Store) Ensure(component, name string) (string, error) {
	key := component + "/" + name
	if _, ok := s.values[key]; !ok {
		buf := make([]byte, 24)
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate secret %s: %w", key, err)
		}
		s.values[key] = base64.RawURLEncoding.EncodeToString(buf)
		s.dirty = true
	}
	return Placeholder(component, name), nil
}

// Save writes the store (mode 0600) if anything was generated.
func (s *Store) Save() error {
	if !s.dirty {
		return nil
	}
	data, err := yaml.Marshal(s.values)
	if err != nil {
		return fmt.Errorf("encode secrets: %w", err)
	}
	header := []byte("# Generated passwords and certificates of this app. Keep this file private (mode 0600) and with\n# the app: regenerating them would lock components out of their own databases, and users would\n# have to trust a new CA.\n")
	if err := fsutil.WriteFile(s.path, append(header, data...), 0o600); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

// Resolve returns copies of objs with every placeholder in Secrets' stringData replaced by its
// value. A placeholder without a stored value is an error: the app directory lost its store.
func (s *Store) Resolve(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(objs))
	var missing []string
	for i, o := range objs {
		out[i] = o
		if o.GetKind() != "Secret" || o.GetAPIVersion() != "v1" {
			continue
		}
		data, found, _ := unstructured.NestedStringMap(o.Object, "stringData")
		if !found {
			continue
		}
		changed := false
		for k, v := range data {
			data[k] = placeholderRE.ReplaceAllStringFunc(v, func(ph string) string {
				key := strings.TrimPrefix(ph, placeholderPrefix)
				val, ok := s.values[key]
				if !ok {
					missing = append(missing, key)
					return ph
				}
				changed = true
				return val
			})
		}
		if changed {
			c := o.DeepCopy()
			_ = unstructured.SetNestedStringMap(c.Object, data, "stringData")
			out[i] = c
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s has no value for %s: run 'kfdeploy generate' to create it (or restore the file from a backup)",
			s.path, strings.Join(missing, ", "))
	}
	return out, nil
}
