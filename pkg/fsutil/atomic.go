// Package fsutil writes files and directories so that a reader never sees them half-written.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file beside path, syncs it and renames it over path.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReplaceDir fills a fresh directory beside dir with files (relative path → content) and then
// swaps it in for dir, so that dir holds either the old or the new set, never a mix.
func ReplaceDir(dir string, files map[string][]byte, perm os.FileMode) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	defer os.RemoveAll(staging) // cleans up after a failure; empty name after success
	if err := os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	for rel, data := range files {
		path := filepath.Join(staging, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
		if err := os.WriteFile(path, data, perm); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
	}
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = filepath.Join(parent, "."+filepath.Base(dir)+".old")
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
	}
	if err := os.Rename(staging, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir) // put the previous manifests back
		}
		return fmt.Errorf("write %s: %w", dir, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}
