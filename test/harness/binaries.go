package harness

import (
	"fmt"
	"os"
	"path/filepath"
)

// CacheDir is where scripts/harness.sh puts the binaries:
// $KFDEPLOY_HARNESS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/kfdeploy/harness.
func CacheDir() (string, error) {
	if d := os.Getenv("KFDEPLOY_HARNESS_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kfdeploy", "harness"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("harness cache: %w", err)
	}
	return filepath.Join(home, ".cache", "kfdeploy", "harness"), nil
}

// BinaryPath returns the path of the harness binary NAME (a name from a
// test/tools/*/harness.list) if it was built, or an error that says how to
// build it. Tests skip on the error: t.Skip(err).
func BinaryPath(name string) (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("harness binary %s is not built in %s: run scripts/harness.sh build %s (make conformance does)", name, dir, name)
	}
	return p, nil
}
