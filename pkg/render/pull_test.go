package render

import (
	"os"
	"path/filepath"
	"testing"

	kfjsonnet "github.com/kfdeploy/kfdeploy/jsonnet"
)

// TestPullSecretsInPlainYAMLComponents: an app's own plain YAML component gets the pull secrets
// too — in its pod specs (after those they name) and ServiceAccounts of the app's namespace —
// while objects of another namespace, whose pods could not read them, are left alone.
func TestPullSecretsInPlainYAMLComponents(t *testing.T) {
	appDir := t.TempDir()
	dir := filepath.Join(AppComponentsDir(appDir), "extra")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: kubeflow}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      imagePullSecrets: [{name: own}]
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: batch/v1
kind: Job
metadata: {name: elsewhere, namespace: other}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: j, image: busybox:1.37.0}]
`
	if err := os.WriteFile(filepath.Join(dir, "objects.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := New(kfjsonnet.Library, appDir).Render("extra", nil, Env{App: "a", Namespace: "kubeflow", ImagePullSecrets: []string{"regcred"}})
	if err != nil {
		t.Fatal(err)
	}
	names := func(holder any) []string {
		var out []string
		list, _ := holder.(map[string]any)["imagePullSecrets"].([]any)
		for _, e := range list {
			out = append(out, e.(map[string]any)["name"].(string))
		}
		return out
	}
	pod := func(kind, name string) any {
		return find(t, objs, kind, name).Object["spec"].(map[string]any)["template"].(map[string]any)["spec"]
	}
	if got := names(pod("Deployment", "web")); len(got) != 2 || got[0] != "own" || got[1] != "regcred" {
		t.Errorf("Deployment web: %v, want own, regcred", got)
	}
	if got := names(find(t, objs, "ServiceAccount", "web").Object); len(got) != 1 || got[0] != "regcred" {
		t.Errorf("ServiceAccount web: %v, want regcred", got)
	}
	if got := names(pod("Job", "elsewhere")); len(got) != 0 {
		t.Errorf("Job of namespace other: %v, want none", got)
	}
}
