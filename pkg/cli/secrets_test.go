package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestGenerateNamesReadableSecrets: generate names a secrets.yaml that others may read, with
// the command that fixes it, and never prints a value; a private file is not named.
func TestGenerateNamesReadableSecrets(t *testing.T) {
	dir := newApp(t)
	mustRun(t, "generate", "--app-dir", dir)
	path := filepath.Join(dir, "secrets.yaml")
	if _, errOut, err := kfdeploy(t, "generate", "--app-dir", dir); err != nil || strings.Contains(errOut, "secrets.yaml") {
		t.Errorf("generate with a 0600 secrets.yaml: %v, stderr %q; want no warning", err, errOut)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := kfdeploy(t, "generate", "--app-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "warning: "+path+" is readable by group or others") || !strings.Contains(errOut, "chmod 600 "+path) {
		t.Errorf("generate with a world-readable secrets.yaml: stderr %q, want a warning naming %s and chmod 600", errOut, path)
	}
	var stored map[string]string
	if err := yaml.Unmarshal([]byte(read(t, path)), &stored); err != nil {
		t.Fatal(err)
	}
	for _, v := range stored {
		if strings.Contains(errOut, v) {
			t.Error("generate's warning prints a secret value")
		}
	}
}

// TestImagesNamesReadableSecrets: images reads secrets.yaml too (a pull secret's file), and
// names one that others may read.
func TestImagesNamesReadableSecrets(t *testing.T) {
	dir := newApp(t)
	mustRun(t, "generate", "--app-dir", dir)
	path := filepath.Join(dir, "secrets.yaml")
	if _, errOut, err := kfdeploy(t, "images", "--app-dir", dir); err != nil || strings.Contains(errOut, "secrets.yaml") {
		t.Errorf("images with a 0600 secrets.yaml: %v, stderr %q; want no warning", err, errOut)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := kfdeploy(t, "images", "--app-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "warning: "+path+" is readable by group or others") || !strings.Contains(errOut, "chmod 600 "+path) {
		t.Errorf("images with a world-readable secrets.yaml: stderr %q, want a warning naming %s and chmod 600", errOut, path)
	}
}
