// Package secrets keeps the app's generated passwords and certificates: created once, stored in the app
// directory with mode 0600, and substituted into Secret objects only at apply time, so that
// manifests never hold them in clear.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
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

// HasPlaceholder reports whether a value of a manifest holds a placeholder.
func HasPlaceholder(v string) bool { return placeholderRE.MatchString(v) }

// Store maps "component/name" to a generated value.
type Store struct {
	path     string
	values   map[string]string
	dirty    bool
	warnings []string
	// made records what this Store issued (store key → madeCA or madeCert), for messages.
	made map[string]string
}

// Load reads appDir/secrets.yaml; a missing file is an empty store. A file that group or
// others may read is loaded with a warning (Warnings): it is already exposed when this runs,
// and refusing would only stop the commands that could fix the deployment.
func Load(appDir string) (*Store, error) {
	s := &Store{path: filepath.Join(appDir, FileName), values: map[string]string{}, made: map[string]string{}}
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	defer f.Close()
	if w := modeWarning(f, s.path); w != "" {
		s.warnings = append(s.warnings, w)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	if err := yaml.UnmarshalStrict(data, &s.values); err != nil {
		return nil, fmt.Errorf("%s: %w (expected a map of component/name: value)", s.path, err)
	}
	return s, nil
}

// modeWarning names a store that group or others may read. Windows has no such mode bits.
func modeWarning(f *os.File, path string) string {
	if runtime.GOOS == "windows" {
		return ""
	}
	st, err := f.Stat()
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return fmt.Sprintf("%s is readable by group or others (mode %04o) and holds the app's passwords and keys: run 'chmod 600 %s'",
		path, st.Mode().Perm(), path)
}

// Warnings are what the store's owner should hear about it (a readable file).
func (s *Store) Warnings() []string { return s.warnings }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

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
	header := []byte("# Generated passwords and certificates of this app. Keep this file private (mode 0600) and with\n# the app: apply keeps what the cluster holds, but the CA's key lives only here (without it\n# the gateway's certificate cannot be re-issued, and users would have to trust a new CA).\n")
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

// Adopt takes the value the cluster holds for a Secret's key into the store. template is the
// key's value in the manifests, holding one or more placeholders (usually the whole value); live
// is the value in the cluster. It returns the store keys whose value changed, and false when
// live does not have the template's shape (nothing is taken then).
func (s *Store) Adopt(template, live string) ([]string, bool) {
	locs := placeholderRE.FindAllStringSubmatchIndex(template, -1)
	if len(locs) == 0 {
		return nil, true
	}
	var pattern strings.Builder
	pattern.WriteString("(?s)^") // a value may span lines (an htpasswd file)
	keys := make([]string, len(locs))
	last := 0
	for i, l := range locs {
		pattern.WriteString(regexp.QuoteMeta(template[last:l[0]]))
		pattern.WriteString("(.*?)")
		keys[i] = template[l[2]:l[3]]
		last = l[1]
	}
	pattern.WriteString(regexp.QuoteMeta(template[last:]) + "$")
	re, err := regexp.Compile(pattern.String())
	if err != nil {
		return nil, false
	}
	m := re.FindStringSubmatch(live)
	if m == nil {
		return nil, false
	}
	found := map[string]string{}
	for i, k := range keys {
		if prev, ok := found[k]; (ok && prev != m[i+1]) || m[i+1] == "" {
			return nil, false
		}
		found[k] = m[i+1]
	}
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(found)) {
		if s.values[k] != found[k] {
			s.values[k] = found[k]
			s.dirty = true
			changed = append(changed, k)
		}
	}
	return changed, true
}
