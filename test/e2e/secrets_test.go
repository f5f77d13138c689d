//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// secretsUIs are the components with generated secrets: the databases' passwords (katib,
// modeldb), JupyterHub's, the gateway's certificate and Katib's webhook certificate.
const secretsUIs = "core,ambassador,jupyterhub,katib,modeldb"

// memberSecrets are the data of the app's Secrets on the cluster (the inventory's parent aside).
func (e *env) memberSecrets(t *testing.T, ctx context.Context, ns, appName string) map[string]map[string][]byte {
	t.Helper()
	set := inventory.ApplySet{App: appName, Namespace: ns}
	list, err := e.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: set.Selector()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]byte{}
	for _, s := range list.Items {
		out[s.Name] = s.Data
	}
	return out
}

func sameData(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return bytes.Equal(x, y) })
}

// TestSecretsKeptWithoutSecretsYAML: a deployed app whose secrets.yaml is gone (a CI checkout)
// runs generate and apply: every generated Secret on the cluster keeps its data, secrets.yaml
// now holds the cluster's values, apply names what it kept and how to rotate, and a world-
// readable secrets.yaml is named by apply. --rotate-ca then replaces only the gateway's
// certificate (Katib's webhook certificate has a CA of its own, which users do not trust).
func TestSecretsKeptWithoutSecretsYAML(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", secretsUIs)
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false")
	// Katib's webhook configurations are cluster-wide and call this namespace's Service: the
	// app goes whole, or they would refuse every later test's pods.
	t.Cleanup(func() { e.run(t, appDir, "delete", "--purge", "--yes") })
	a, err := app.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	before := e.memberSecrets(t, ctx, ns, a.App.Metadata.Name)
	for _, name := range []string{"katib-mysql-secrets", "modeldb-mysql-secrets", "jupyterhub", "ambassador-tls", "katib-webhook-cert"} {
		if len(before[name]) == 0 {
			t.Fatalf("Secret %s/%s is not on the cluster with data after apply", ns, name)
		}
	}

	storePath := filepath.Join(appDir, "secrets.yaml")
	if err := os.Remove(storePath); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, appDir, "generate")
	applied := e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false")

	after := e.memberSecrets(t, ctx, ns, a.App.Metadata.Name)
	for name, data := range before {
		if !sameData(data, after[name]) {
			t.Errorf("Secret %s/%s changed after secrets.yaml was lost and generate and apply ran", ns, name)
		}
	}
	for _, name := range []string{"katib-mysql-secrets", "modeldb-mysql-secrets", "jupyterhub", "ambassador-tls", "katib-webhook-cert"} {
		if want := "kept Secret " + ns + "/" + name; !strings.Contains(applied.stdout, want) {
			t.Errorf("apply does not say %q:\n%s", want, applied.stdout)
		}
	}
	if !strings.Contains(applied.stdout, "--rotate-secret "+ns+"/katib-mysql-secrets") || !strings.Contains(applied.stdout, "--rotate-ca") {
		t.Errorf("apply does not name the way to rotate:\n%s", applied.stdout)
	}
	for _, data := range before {
		for _, v := range data {
			if len(v) >= 16 && strings.Contains(applied.stdout+applied.stderr, string(v)) {
				t.Error("apply printed a secret value")
			}
		}
	}

	// secrets.yaml holds the cluster's values: what apply resolves from it is what is live.
	loaded, err := app.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range loaded.Objects {
		data, found, _ := unstructured.NestedStringMap(o.Object, "stringData")
		if o.GetKind() != "Secret" || !found {
			continue
		}
		for k, v := range data {
			if string(after[o.GetName()][k]) != v {
				t.Errorf("secrets.yaml's value for Secret %s key %s is not the cluster's", o.GetName(), k)
			}
		}
	}
	again := e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false")
	if strings.Contains(again.stdout, "kept Secret") {
		t.Errorf("a second apply took values again:\n%s", again.stdout)
	}

	// A world-readable secrets.yaml is named by apply, with the fix.
	if err := os.Chmod(storePath, 0o644); err != nil {
		t.Fatal(err)
	}
	readable := e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false")
	if !strings.Contains(readable.stdout, storePath+" is readable by group or others") || !strings.Contains(readable.stdout, "chmod 600 "+storePath) {
		t.Errorf("apply with a world-readable secrets.yaml does not name it with chmod 600:\n%s", readable.stdout)
	}
	if err := os.Chmod(storePath, 0o600); err != nil {
		t.Fatal(err)
	}

	// The CA's key went with the old secrets.yaml: 'kfdeploy ca' says how to get one back, and
	// --rotate-ca replaces the certificate (only it) with one from a new CA.
	if r := e.run(t, appDir, "ca"); r.code == 0 || !strings.Contains(r.stderr, "--rotate-ca") {
		t.Errorf("kfdeploy ca without the CA: exit %d, %s", r.code, r.stderr)
	}
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false", "--rotate-ca")
	rotated := e.memberSecrets(t, ctx, ns, a.App.Metadata.Name)
	for name, data := range before {
		if changed := !sameData(data, rotated[name]); changed != (name == "ambassador-tls") {
			t.Errorf("after --rotate-ca, Secret %s changed: %v", name, changed)
		}
	}
	ca := parsePEMCert(t, []byte(e.mustRun(t, appDir, "ca").stdout))
	if err := parsePEMCert(t, rotated["ambassador-tls"][corev1.TLSCertKey]).CheckSignatureFrom(ca); err != nil || len(ca.PermittedDNSDomains) == 0 {
		t.Errorf("the rotated certificate is not signed by the new, name-constrained CA (%v, constraints %v)", err, ca.PermittedDNSDomains)
	}
}
