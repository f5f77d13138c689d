package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// dbComponent is an app-local component with a generated password, so that these tests do not
// depend on the built-in library.
const dbComponent = `{
  description: 'a database',
  params: { user: { default: 'app', description: 'database user' } },
  secrets: { 'db-password': { description: 'x' } },
  render(p, env):: [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: env.namespace },
      stringData: { user: p.user, password: env.secrets['db-password'] },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'db-settings', namespace: env.namespace },
      data: { user: p.user },
    },
  ],
}
`

// newTestApp writes an app directory with app.yaml listing the given app-local components.
func newTestApp(t *testing.T, components map[string]string, order ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(filepath.Join(dir, "components"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range components {
		writeFile(t, filepath.Join(dir, "components", name+".jsonnet"), src)
	}
	writeAppYAML(t, dir, order...)
	return dir
}

func writeAppYAML(t *testing.T, dir string, components ...string) {
	t.Helper()
	list := make([]config.Component, len(components))
	for i, c := range components {
		list[i] = config.Component{Name: c}
	}
	data, err := config.New("demo", config.PlatformNone, "ml", list).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, config.FileName), string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTree reads every file under dir (relative path → content).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// storedPassword reads the db password from secrets.yaml and checks the file's mode.
func storedPassword(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, secrets.FileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]string
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	v := values["db/db-password"]
	if len(v) < 16 {
		t.Fatalf("secrets.yaml holds %q for db/db-password, want a generated password", v)
	}
	return v
}

func TestGenerateKeepsPasswordsAndOutputStable(t *testing.T) {
	dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	first := readTree(t, filepath.Join(dir, ManifestsDir))
	password := storedPassword(t, dir)

	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if second := readTree(t, filepath.Join(dir, ManifestsDir)); !reflect.DeepEqual(first, second) {
		t.Errorf("a second generate changed manifests/:\nfirst:  %v\nsecond: %v", first, second)
	}
	if again := storedPassword(t, dir); again != password {
		t.Errorf("a second generate changed the password: %q, then %q", password, again)
	}

	manifest := first["db.yaml"]
	if ph := secrets.Placeholder("db", "db-password"); !strings.Contains(manifest, ph) {
		t.Errorf("manifests/db.yaml does not hold the placeholder %s:\n%s", ph, manifest)
	}
	for name, content := range first {
		if strings.Contains(content, password) {
			t.Errorf("manifests/%s holds the password in clear", name)
		}
	}

	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range loaded.Objects {
		if o.GetKind() != "Secret" || o.GetName() != "db" {
			continue
		}
		found = true
		got, _ := o.Object["stringData"].(map[string]any)
		if got["password"] != password || got["user"] != "app" {
			t.Errorf("Load resolved the Secret's stringData to %v, want password %q and user app", got, password)
		}
	}
	if !found {
		t.Errorf("Load returned no Secret db among %d objects", len(loaded.Objects))
	}
}

func TestGenerateFailureKeepsPreviousManifests(t *testing.T) {
	for name, broken := range map[string]struct{ src, want string }{
		"runtime error": {`{ render(p, env):: error 'broken on purpose' }`, "broken on purpose"},
		"syntax error":  {"{\n  render(p, env):: [,\n}\n", "components/broken.jsonnet:2:"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
			if _, err := Generate(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
			before := readTree(t, filepath.Join(dir, ManifestsDir))

			writeFile(t, filepath.Join(dir, "components", "broken.jsonnet"), broken.src)
			writeAppYAML(t, dir, "db", "broken")
			_, err := Generate(context.Background(), dir)
			if err == nil || !strings.Contains(err.Error(), broken.want) {
				t.Fatalf("Generate with a broken component: error %v, want it to mention %q", err, broken.want)
			}
			if after := readTree(t, filepath.Join(dir, ManifestsDir)); !reflect.DeepEqual(before, after) {
				t.Errorf("a failed generate changed manifests/:\nbefore: %v\nafter:  %v", before, after)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "."+ManifestsDir) {
					t.Errorf("a failed generate left %s behind", e.Name())
				}
			}
		})
	}
}

func TestLoadManifestsRefusesStaleManifests(t *testing.T) {
	dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests(dir); err != nil {
		t.Fatalf("fresh manifests: %v", err)
	}

	appFile := filepath.Join(dir, config.FileName)
	data, err := os.ReadFile(appFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, appFile, strings.Replace(string(data), "name: db", "name: db\n      params: {user: admin}", 1))
	_, err = LoadManifests(dir)
	if err == nil || !strings.Contains(err.Error(), "run 'kfdeploy generate'") {
		t.Fatalf("LoadManifests after editing app.yaml: error %v, want it to say to run 'kfdeploy generate'", err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load after editing app.yaml succeeded, want the stale-manifests error")
	}

	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests(dir); err != nil {
		t.Fatalf("regenerated manifests: %v", err)
	}
	// The app's own components are inputs too.
	writeFile(t, filepath.Join(dir, "components", "db.jsonnet"), strings.Replace(dbComponent, "a database", "the database", 1))
	if _, err := LoadManifests(dir); err == nil || !strings.Contains(err.Error(), "run 'kfdeploy generate'") {
		t.Fatalf("LoadManifests after editing components/db.jsonnet: error %v, want the stale-manifests error", err)
	}
}

func TestGenerateStopsWhenInterrupted(t *testing.T) {
	dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, filepath.Join(dir, ManifestsDir))
	writeAppYAML(t, dir, "db")
	writeFile(t, filepath.Join(dir, "components", "db.jsonnet"), strings.Replace(dbComponent, "db-settings", "db-config", 1))

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as Ctrl-C does through signal.NotifyContext
	_, err := Generate(ctx, dir)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with a cancelled context: error %v, want context.Canceled", err)
	}
	if after := readTree(t, filepath.Join(dir, ManifestsDir)); !reflect.DeepEqual(before, after) {
		t.Errorf("an interrupted generate changed manifests/:\nbefore: %v\nafter:  %v", before, after)
	}
}

// TestLoadWarnsOfReadableSecrets: the commands that load the app (preflight, apply, diff) are
// handed the warning about a secrets.yaml others may read, naming the file.
func TestLoadWarnsOfReadableSecrets(t *testing.T) {
	dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, secrets.FileName)
	loaded, err := Load(dir)
	if err != nil || len(loaded.Warnings) != 0 {
		t.Fatalf("Load with a private secrets.yaml: warnings %v, %v; want none", loaded.Warnings, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if loaded, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	if len(loaded.Warnings) != 1 || !strings.Contains(loaded.Warnings[0], path) || !strings.Contains(loaded.Warnings[0], "chmod 600") {
		t.Errorf("Load with a world-readable secrets.yaml: warnings %v, want one naming %s and chmod 600", loaded.Warnings, path)
	}
}
