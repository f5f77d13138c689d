package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// katibApp is an app directory with Katib (its webhook certificate), generated.
func katibApp(t *testing.T) string {
	t.Helper()
	return generatedApp(t, config.Component{Name: "katib"})
}

// caBundles are the caBundles of the webhooks of objs' webhook configurations, decoded.
func caBundles(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
			continue
		}
		webhooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for _, w := range webhooks {
			b, _, _ := unstructured.NestedString(w.(map[string]any), "clientConfig", "caBundle")
			pem, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				t.Fatalf("%s %s: caBundle: %v", o.GetKind(), o.GetName(), err)
			}
			out = append(out, string(pem))
		}
	}
	if len(out) != 3 {
		t.Fatalf("%d webhooks, want Katib's 3", len(out))
	}
	return out
}

func parsePEM(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkServed: the webhooks' caBundle is the Secret's ca.crt, which issued its tls.crt for the
// controller's Service.
func checkServed(t *testing.T, objs []*unstructured.Unstructured) (ca string) {
	t.Helper()
	data := secretData(t, objs, "katib-webhook-cert")
	for _, b := range caBundles(t, objs) {
		if b != data["ca.crt"] {
			t.Fatalf("a webhook's caBundle is not the CA of Secret katib-webhook-cert")
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsePEM(t, data["ca.crt"]))
	if _, err := parsePEM(t, data[corev1.TLSCertKey]).Verify(x509.VerifyOptions{DNSName: "katib-controller.ml.svc", Roots: roots}); err != nil {
		t.Fatalf("the webhook certificate does not verify for katib-controller.ml.svc: %v", err)
	}
	return data["ca.crt"]
}

// TestKatibWebhookCertificate: generate issues Katib's webhook certificate, keeps it across
// generates and fills in the webhooks' caBundle; 'kfdeploy ca' does not offer its CA to users;
// apply keeps the cluster's certificate with its CA when secrets.yaml lacks it, replaces it on
// --rotate-secret, and replaces one served without its CA.
func TestKatibWebhookCertificate(t *testing.T) {
	deployed := katibApp(t)
	before := readTree(t, deployed)
	if before["manifests/katib.yaml"] == "" || before["secrets.yaml"] == "" {
		t.Fatal("generate wrote no manifests/katib.yaml or secrets.yaml")
	}
	if _, err := Generate(context.Background(), deployed); err != nil {
		t.Fatal(err)
	}
	if after := readTree(t, deployed); after["manifests/katib.yaml"] != before["manifests/katib.yaml"] || after["secrets.yaml"] != before["secrets.yaml"] {
		t.Error("a second generate changed Katib's manifests or secrets.yaml")
	}
	if _, _, err := CACertificate(deployed); err == nil || !strings.Contains(err.Error(), "no certificate issued by kfdeploy") {
		t.Errorf("kfdeploy ca of an app whose only certificate is the webhook's: %v, want no CA for users", err)
	}
	loadedDeployed, live := liveCopies(t, deployed)
	servedCA := checkServed(t, loadedDeployed.Objects)

	// A checkout that lost secrets.yaml keeps the cluster's certificate and its CA.
	objs := make([]runtime.Object, 0, len(live))
	for _, s := range live {
		objs = append(objs, s)
	}
	cs := fake.NewClientset(objs...)
	snap := snapshot.New(&kube.Client{Typed: cs, Fast: cs}, inventory.ApplySet{}, snapshot.Options{})
	checkout := katibApp(t)
	loaded, err := Load(checkout)
	if err != nil {
		t.Fatal(err)
	}
	if checkServed(t, loaded.Objects) == servedCA {
		t.Fatal("the two checkouts made the same CA; the test needs them to differ")
	}
	out, rep, err := adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if checkServed(t, out.Objects) != servedCA {
		t.Error("apply would replace the cluster's webhook certificate and CA")
	}
	i := slices.IndexFunc(rep.Adopted, func(a AdoptedSecret) bool { return a.Secret == "ml/katib-webhook-cert" })
	if i < 0 || rep.Adopted[i].Rotate != "--rotate-secret ml/katib-webhook-cert" || !slices.Equal(rep.Adopted[i].Keys, []string{"ca.crt", "tls.crt", "tls.key"}) {
		t.Errorf("adopted %+v, want ml/katib-webhook-cert's ca.crt, tls.crt, tls.key, replaced by --rotate-secret", rep.Adopted)
	}
	if slices.ContainsFunc(append(rep.Warnings, rep.Notes...), func(s string) bool { return strings.Contains(s, "trust") }) {
		t.Errorf("notices %q tell users to trust a CA only the API server trusts", append(rep.Warnings, rep.Notes...))
	}
	// Kept: a generate and a second apply leave it.
	if _, err := Generate(context.Background(), checkout); err != nil {
		t.Fatal(err)
	}
	if loaded, err = Load(checkout); err != nil {
		t.Fatal(err)
	}
	if checkServed(t, loaded.Objects) != servedCA {
		t.Error("generate after apply took the cluster's certificate: the manifests' caBundle is not its CA")
	}
	if out, rep, err = adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{}, false); err != nil || len(rep.Adopted) != 0 || checkServed(t, out.Objects) != servedCA {
		t.Errorf("second apply: adopted %v, %v; want the same certificate, nothing new taken", rep.Adopted, err)
	}

	// --rotate-ca is the users' CA: it leaves this one.
	if _, _, err := adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{CA: true}, false); err == nil || !strings.Contains(err.Error(), "no certificate issued by kfdeploy's CA") {
		t.Errorf("--rotate-ca of an app whose only certificate is the webhook's: %v, want no CA of users to rotate", err)
	}

	// --rotate-secret: a new CA and certificate, and the caBundle follows.
	out, _, err = adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{Secrets: []string{"katib-webhook-cert"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if checkServed(t, out.Objects) == servedCA {
		t.Error("--rotate-secret ml/katib-webhook-cert kept the cluster's CA")
	}

	// A certificate served without its CA cannot be handed to the API server: replaced.
	noCA := live[secretIndex(live, "katib-webhook-cert")].DeepCopy()
	delete(noCA.Data, "ca.crt")
	cs = fake.NewClientset(noCA)
	other := katibApp(t)
	if loaded, err = Load(other); err != nil {
		t.Fatal(err)
	}
	mine := checkServed(t, loaded.Objects)
	out, rep, err = adoptLiveSecrets(context.Background(), snapshot.New(&kube.Client{Typed: cs, Fast: cs}, inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if checkServed(t, out.Objects) != mine || len(rep.Adopted) != 0 {
		t.Errorf("a cluster's certificate without its CA: adopted %v; want secrets.yaml's served", rep.Adopted)
	}
}

// expiringCertificate is a CA and a certificate for katib-controller.ml.svc that it issued,
// which expires in a day (PEM).
func expiringCertificate(t *testing.T) (caPEM, certPEM, keyPEM string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"katib-controller.ml.svc"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	return enc("CERTIFICATE", caDER), enc("CERTIFICATE", der), enc("PRIVATE KEY", keyDER)
}

// TestKatibWebhookCertificateRenewedWithoutCAKey: a certificate taken from the cluster without
// its CA's key cannot be renewed; close to its expiry apply replaces it with one from a new CA
// (only the API server trusts it, through the caBundle of the same apply), and does not take
// such a certificate from the cluster in the first place.
func TestKatibWebhookCertificateRenewedWithoutCAKey(t *testing.T) {
	dir := katibApp(t)
	loaded, live := liveCopies(t, dir)
	caPEM, certPEM, keyPEM := expiringCertificate(t)
	sec := live[secretIndex(live, "katib-webhook-cert")]
	sec.Data = map[string][]byte{"ca.crt": []byte(caPEM), corev1.TLSCertKey: []byte(certPEM), corev1.TLSPrivateKeyKey: []byte(keyPEM)}
	cs := fake.NewClientset(sec)
	snap := snapshot.New(&kube.Client{Typed: cs, Fast: cs}, inventory.ApplySet{}, snapshot.Options{})

	out, rep, err := adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 0 || checkServed(t, out.Objects) == caPEM {
		t.Errorf("adopted %v: a certificate expiring tomorrow was kept", rep.Adopted)
	}

	// Taken earlier (secrets.yaml holds it without its CA's key), now close to expiry.
	store, err := secrets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AdoptIssuedCertificate("katib", "webhook", certPEM, keyPEM, caPEM); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(); err != nil {
		t.Fatal(err)
	}
	out, _, err = adoptLiveSecrets(context.Background(), snap, loaded, SecretRotation{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if checkServed(t, out.Objects) == caPEM {
		t.Error("a certificate without its CA's key, expiring tomorrow, was not replaced")
	}
	if store, _ = secrets.Load(dir); store.CAKeyMissing("katib", "webhook") {
		t.Error("secrets.yaml still says the CA's key is missing after the certificate was replaced")
	}
}

// TestGatewayAndKatibCAsApart: with the gateway, 'kfdeploy ca' gives users the gateway's CA
// only, and --rotate-ca replaces the gateway's certificate only.
func TestGatewayAndKatibCAsApart(t *testing.T) {
	dir := generatedApp(t, config.Component{Name: "ambassador", Params: map[string]any{"serviceType": "ClusterIP"}}, config.Component{Name: "katib"})
	ca, _, err := CACertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca != storeValue(t, dir, "ambassador/tls.ca.crt") {
		t.Error("kfdeploy ca does not give exactly the gateway's CA")
	}
	loaded, live := liveCopies(t, dir)
	objs := make([]runtime.Object, 0, len(live))
	for _, s := range live {
		objs = append(objs, s)
	}
	cs := fake.NewClientset(objs...)
	out, rep, err := adoptLiveSecrets(context.Background(), snapshot.New(&kube.Client{Typed: cs, Fast: cs}, inventory.ApplySet{}, snapshot.Options{}), loaded, SecretRotation{CA: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Rotated, []string{"ml/ambassador-tls"}) {
		t.Errorf("--rotate-ca rotated %v, want only ml/ambassador-tls", rep.Rotated)
	}
	if secretData(t, out.Objects, "ambassador-tls")[corev1.TLSCertKey] == string(live[secretIndex(live, "ambassador-tls")].Data[corev1.TLSCertKey]) {
		t.Error("--rotate-ca kept the gateway's certificate")
	}
	if checkServed(t, out.Objects) != string(live[secretIndex(live, "katib-webhook-cert")].Data["ca.crt"]) {
		t.Error("--rotate-ca replaced Katib's webhook CA")
	}
}
