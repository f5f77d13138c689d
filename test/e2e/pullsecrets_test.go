//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPullSecretsPreflightAndApply: preflight fails while a pull Secret that app.yaml names is
// missing from the namespace, naming it and the command that creates it; once it exists, apply
// creates the Secret made from the docker config file (its contents, which no manifest holds)
// and the app's pods and accounts name both.
func TestPullSecretsPreflightAndApply(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir, ns := e.newApp(t, "--components", "argo")
	e.cleanupNamespace(t, ns)
	t.Cleanup(func() { e.run(t, dir, "delete", "--yes", "--purge") })
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	config := `{"auths":{"registry.local:5000":{"auth":"ZTJlOnB3LW9mLXRoZS1lMmUtdGVzdA=="}}}`
	if err := os.WriteFile(filepath.Join(dir, "mirror-auth.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "app.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("  images:\n    pullSecrets:\n      - regcred\n      - name: mirror-login\n        file: mirror-auth.json\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, dir, "generate")
	for _, name := range []string{"argo.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "ZTJlOnB3") {
			t.Errorf("manifests/%s holds the docker config's login", name)
		}
	}

	r := e.run(t, dir, "preflight", "-o", "json")
	rep := parsePreflight(t, r)
	if r.code != 1 || !rep.has("pull-secrets", "fail", "pull secret regcred named in app.yaml", "does not exist in namespace "+ns) {
		t.Fatalf("preflight without Secret regcred: exit %d, pull-secrets %v", r.code, rep.findings("pull-secrets"))
	}

	if _, err := e.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, dir, "apply")
	s, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "mirror-login", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson || string(s.Data[corev1.DockerConfigJsonKey]) != config {
		t.Errorf("Secret mirror-login of type %s does not hold the docker config file", s.Type)
	}
	names := func(refs []corev1.LocalObjectReference) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.Name)
		}
		return out
	}
	want := []string{"regcred", "mirror-login"}
	d, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "workflow-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(d.Spec.Template.Spec.ImagePullSecrets); !slices.Equal(got, want) {
		t.Errorf("Deployment workflow-controller: imagePullSecrets %v, want %v", got, want)
	}
	sa, err := e.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "argo-workflow", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(sa.ImagePullSecrets); !slices.Equal(got, want) {
		t.Errorf("ServiceAccount argo-workflow: imagePullSecrets %v, want %v", got, want)
	}
}
