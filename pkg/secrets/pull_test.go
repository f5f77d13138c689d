package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	testPassword = "hunter2-not-to-be-quoted"
	testConfig   = `{"auths":{"registry.local:5000":{"username":"bot","password":"` + testPassword + `"}}}`
)

// TestDockerConfigSecret: a docker config becomes a dockerconfigjson Secret holding a
// placeholder, which Resolve replaces with the stored config; secrets.yaml keeps it (0600), so
// that a later store without the file still resolves it; a changed file replaces it.
func TestDockerConfigSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := s.EnsureDockerConfig("mirror-login", []byte(testConfig), "auth.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ph, testPassword) || ph != Placeholder(PullComponent, "mirror-login") {
		t.Fatalf("placeholder %q", ph)
	}
	obj := DockerConfigSecret("mirror-login", "kubeflow", ph, map[string]string{"app": "x"})
	if obj.GetKind() != "Secret" || obj.Object["type"] != "kubernetes.io/dockerconfigjson" || obj.GetNamespace() != "kubeflow" {
		t.Errorf("secret %v", obj.Object)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.yaml: %v %v", st, err)
	}

	// A new store: the file is gone, the stored copy serves.
	s2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.EnsureDockerConfig("mirror-login", nil, "auth.json"); err != nil {
		t.Fatal(err)
	}
	out, err := s2.Resolve([]*unstructured.Unstructured{obj})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(out[0].Object, "stringData", DockerConfigKey); got != testConfig {
		t.Errorf("resolved %q", got)
	}
	if v, _, _ := unstructured.NestedString(obj.Object, "stringData", DockerConfigKey); v != ph {
		t.Errorf("Resolve changed the manifest's object: %q", v)
	}

	// A new login replaces the stored one.
	changed := strings.Replace(testConfig, "bot", "bot2", 1)
	if _, err := s2.EnsureDockerConfig("mirror-login", []byte(changed), "auth.json"); err != nil || !s2.dirty {
		t.Fatalf("changed config: %v, dirty %v", err, s2.dirty)
	}
	out, _ = s2.Resolve([]*unstructured.Unstructured{obj})
	if got, _, _ := unstructured.NestedString(out[0].Object, "stringData", DockerConfigKey); got != changed {
		t.Errorf("resolved %q after the change", got)
	}
}

func TestDockerConfigRefused(t *testing.T) {
	s, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ data, want string }{
		{`{"auths": {"r": {"password": "` + testPassword + `"}`, "not valid JSON"},
		{`["` + testPassword + `"]`, `not a docker config`},
		{`{"credsStore": "desktop", "auths": {}}`, "credential helper"},
		{`{"note": "` + testPassword + `"}`, `no logins under "auths"`},
	} {
		_, err := s.EnsureDockerConfig("p", []byte(tc.data), "auth.json")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "auth.json") {
			t.Errorf("%s: %v, want %q naming the file", tc.data, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testPassword) {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
	if _, err := s.EnsureDockerConfig("p", nil, "auth.json"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("no file, nothing stored: %v", err)
	}
}
