package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// secretsApp is an app directory with a database (modeldb) and the gateway (its certificate),
// generated.
func secretsApp(t *testing.T) string {
	t.Helper()
	return generatedApp(t,
		config.Component{Name: "ambassador", Params: map[string]any{"serviceType": "ClusterIP"}},
		config.Component{Name: "modeldb"})
}

// generatedApp is an app directory "demo" (namespace ml) of components, generated.
func generatedApp(t *testing.T, components ...config.Component) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := config.New("demo", config.PlatformNone, "ml", components).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, config.FileName), string(data))
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// liveCopies are the resolved generated Secrets of dir as the cluster would hold them: data,
// and the app's member label.
func liveCopies(t *testing.T, dir string) (*Loaded, []*corev1.Secret) {
	t.Helper()
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Secret
	for _, o := range loaded.Objects {
		data, found, _ := unstructured.NestedStringMap(o.Object, "stringData")
		if o.GetKind() != "Secret" || !found {
			continue
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(),
			Labels: map[string]string{inventory.LabelPartOf: loaded.ApplySet().ID()}}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		out = append(out, s)
	}
	return loaded, out
}

func secretData(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == name {
			data, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
			return data
		}
	}
	t.Fatalf("no Secret %s", name)
	return nil
}

// TestAdoptLiveSecrets: a checkout that lost secrets.yaml (generate made new values) applies
// the cluster's values: secrets.yaml takes them, the Secrets to apply hold them, the served
// certificate stays; the cluster is read with lists only. --rotate-secret applies the
// checkout's values instead.
func TestAdoptLiveSecrets(t *testing.T) {
	deployed := secretsApp(t)
	_, live := liveCopies(t, deployed)
	objs := make([]runtime.Object, 0, len(live))
	for _, s := range live {
		objs = append(objs, s)
	}

	// A CI runner's checkout: the same app, secrets.yaml lost, generate again.
	checkout := secretsApp(t)
	loaded, err := Load(checkout)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := secretData(t, loaded.Objects, "modeldb-mysql-secrets")["password"], string(live[secretIndex(live, "modeldb-mysql-secrets")].Data["password"]); got == want {
		t.Fatal("the two checkouts generated the same password; the test needs them to differ")
	}
	cs := fake.NewClientset(objs...)
	c := &kube.Client{Typed: cs, Fast: cs}
	adopted, rep, err := adoptLiveSecrets(context.Background(), snapshot.New(c, inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range live {
		got := secretData(t, adopted.Objects, s.Name)
		for k, v := range s.Data {
			if got[k] != string(v) {
				t.Errorf("Secret %s key %s: apply would write another value than the cluster holds", s.Name, k)
			}
		}
	}
	var names []string
	for _, a := range rep.Adopted {
		names = append(names, a.Secret)
	}
	if !slices.Equal(names, []string{"ml/ambassador-tls", "ml/modeldb-mysql-secrets"}) {
		t.Errorf("adopted %v, want the certificate's and the database's Secrets", names)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool {
		return strings.Contains(w, "--rotate-ca") && strings.Contains(w, "ml/ambassador-tls")
	}) {
		t.Errorf("warnings %q do not say that the certificate stays without its CA key, and how to rotate", rep.Warnings)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "list" {
			t.Errorf("apply's secret step sent %s %s; it must read with lists only", a.GetVerb(), a.GetResource().Resource)
		}
	}
	if n := len(cs.Actions()); n != 1 {
		t.Errorf("%d requests, want one list of the namespace's Secrets", n)
	}

	// secrets.yaml now holds the cluster's values: a second apply takes nothing, and a
	// generate keeps them.
	if _, err := Generate(context.Background(), checkout); err != nil {
		t.Fatal(err)
	}
	reloaded, err := Load(checkout)
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err = adoptLiveSecrets(context.Background(), snapshot.New(c, inventory.ApplySet{}, snapshot.Options{}), reloaded, SecretRotation{}, false)
	if err != nil || len(rep.Adopted) != 0 {
		t.Errorf("second apply: adopted %v, %v; want nothing left to take", rep.Adopted, err)
	}
	store, _ := secrets.Load(checkout)
	if !store.CAKeyMissing("ambassador", "tls") {
		t.Error("secrets.yaml does not record that the served certificate's CA key is missing")
	}

	// Rotation: the checkout's value is applied.
	rotating := secretsApp(t)
	loaded, _ = Load(rotating)
	mine := secretData(t, loaded.Objects, "modeldb-mysql-secrets")["password"]
	out, rep, err := adoptLiveSecrets(context.Background(), snapshot.New(c, inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{Secrets: []string{"ml/modeldb-mysql-secrets"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := secretData(t, out.Objects, "modeldb-mysql-secrets")["password"]; got != mine || !slices.Contains(rep.Rotated, "ml/modeldb-mysql-secrets") {
		t.Errorf("--rotate-secret: the password to apply is not secrets.yaml's (rotated %v)", rep.Rotated)
	}
	if _, _, err := adoptLiveSecrets(context.Background(), snapshot.New(c, inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{Secrets: []string{"ml/nope"}}, false); err == nil || !strings.Contains(err.Error(), "ml/modeldb-mysql-secrets") {
		t.Errorf("--rotate-secret of an unknown Secret: %v, want an error listing the generated ones", err)
	}
}

func secretIndex(s []*corev1.Secret, name string) int {
	return slices.IndexFunc(s, func(x *corev1.Secret) bool { return x.Name == name })
}

// TestAdoptLiveSecretsLeavesUserFiles: a certificate from the user's files is theirs to
// replace: apply serves the files' certificate, not the one the cluster holds.
func TestAdoptLiveSecretsLeavesUserFiles(t *testing.T) {
	issuer := gatewayApp(t, map[string]any{"serviceType": "ClusterIP"})
	generated(t, issuer)
	crt, key := storeValue(t, issuer, "ambassador/tls.crt"), storeValue(t, issuer, "ambassador/tls.key")

	dir := gatewayApp(t, map[string]any{"serviceType": "ClusterIP", "tlsCertFile": "gw.crt", "tlsKeyFile": "gw.key"})
	writeFile(t, filepath.Join(dir, "gw.crt"), crt)
	writeFile(t, filepath.Join(dir, "gw.key"), key)
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	loaded, live := liveCopies(t, dir)
	// The cluster serves an older certificate of the user's.
	other := gatewayApp(t, map[string]any{"serviceType": "ClusterIP", "hostname": "old.example.com"})
	generated(t, other)
	live[secretIndex(live, "ambassador-tls")].Data[corev1.TLSCertKey] = []byte(storeValue(t, other, "ambassador/tls.crt"))
	live[secretIndex(live, "ambassador-tls")].Data[corev1.TLSPrivateKeyKey] = []byte(storeValue(t, other, "ambassador/tls.key"))
	cs := fake.NewClientset(live[0])
	out, rep, err := adoptLiveSecrets(context.Background(), snapshot.New((&kube.Client{Typed: cs, Fast: cs}), inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 0 || secretData(t, out.Objects, "ambassador-tls")[corev1.TLSCertKey] != crt {
		t.Errorf("adopted %v; the user's files must be served", rep.Adopted)
	}
}

func storeValue(t *testing.T, dir, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}
