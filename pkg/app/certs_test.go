package app

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// gatewayApp is an app directory with the built-in ambassador component and the given params.
func gatewayApp(t *testing.T, params map[string]any) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	setGatewayParams(t, dir, params)
	return dir
}

func setGatewayParams(t *testing.T, dir string, params map[string]any) {
	t.Helper()
	data, err := config.New("demo", config.PlatformNone, "ml", []config.Component{{Name: "ambassador", Params: params}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, config.FileName), string(data))
}

func generated(t *testing.T, dir string) (serving, ca *x509.Certificate) {
	t.Helper()
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	store, err := secrets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	serving, err = store.Certificate("ambassador", "tls")
	if err != nil {
		t.Fatalf("no serving certificate stored: %v", err)
	}
	caPEM, _, err := CACertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(caPEM))
	if ca, err = x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := serving.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("serving certificate not signed by the app's CA: %v", err)
	}
	return serving, ca
}

// TestGatewayCertificateLifecycle: generated once, stable across generates, kept out of
// manifests/, and re-issued from the same CA when the gateway's addresses change.
func TestGatewayCertificateLifecycle(t *testing.T) {
	dir := gatewayApp(t, map[string]any{"serviceType": "ClusterIP"})
	first, ca := generated(t, dir)
	if !slices.Contains(first.DNSNames, "ambassador.ml.svc") || len(first.IPAddresses) != 2 {
		t.Errorf("SANs %v %v, want the Service's names and the loopback addresses", first.DNSNames, first.IPAddresses)
	}
	if first.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", first.PublicKeyAlgorithm)
	}
	st, err := os.Stat(filepath.Join(dir, secrets.FileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.yaml: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	again, ca2 := generated(t, dir)
	if !again.Equal(first) || !ca2.Equal(ca) {
		t.Error("a second generate changed the certificate or the CA")
	}

	// A new address inside the CA's constraints (a private one): re-issued from the same CA.
	setGatewayParams(t, dir, map[string]any{"serviceType": "ClusterIP", "externalIPs": []any{"10.1.2.3"}})
	moved, ca3 := generated(t, dir)
	if moved.Equal(first) {
		t.Fatal("externalIPs changed but the certificate was not re-issued")
	}
	if !ca3.Equal(ca) {
		t.Error("re-issuing created a new CA; users would have to trust it again")
	}
	if !slices.ContainsFunc(moved.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("10.1.2.3")) }) {
		t.Errorf("re-issued certificate covers %v, want 10.1.2.3", moved.IPAddresses)
	}

	// A public address the CA was not made for: outside its constraints, so the certificate
	// leaves it out, keeps the CA, and generate says how to rotate.
	setGatewayParams(t, dir, map[string]any{"serviceType": "ClusterIP", "externalIPs": []any{"10.1.2.3", "192.0.2.10"}})
	res, err := Generate(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Warnings, func(n string) bool {
		return strings.Contains(n, "192.0.2.10 are outside") && strings.Contains(n, "kfdeploy apply --rotate-ca")
	}) {
		t.Errorf("generate's warnings %q do not name 192.0.2.10 as outside the CA with the way to rotate", res.Warnings)
	}
	wide, ca4 := generated(t, dir)
	if !ca4.Equal(ca) || slices.ContainsFunc(wide.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("192.0.2.10")) }) {
		t.Errorf("a name outside the CA's constraints: new CA %v, certificate covers %v; want the same CA, without 192.0.2.10", !ca4.Equal(ca), wide.IPAddresses)
	}

	// Manifests hold placeholders only: no PEM block anywhere under manifests/.
	for name, content := range readTree(t, filepath.Join(dir, ManifestsDir)) {
		if strings.Contains(content, "-----BEGIN") {
			t.Errorf("manifests/%s holds a PEM block in clear", name)
		}
	}
	// Apply's view resolves them.
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range loaded.Objects {
		if o.GetKind() == "Secret" && o.GetName() == "ambassador-tls" {
			data := o.Object["stringData"].(map[string]any)
			if !strings.HasPrefix(data[corev1.TLSCertKey].(string), "-----BEGIN CERTIFICATE") || !strings.HasPrefix(data[corev1.TLSPrivateKeyKey].(string), "-----BEGIN PRIVATE KEY") {
				t.Errorf("resolved Secret ambassador-tls: %v", data)
			}
		}
	}
}

// TestGatewayCertificateFromFiles: the user's files are stored instead, and 'kfdeploy ca' says
// there is no kfdeploy CA to trust for them.
func TestGatewayCertificateFromFiles(t *testing.T) {
	// A certificate of another CA: the one another app's generate issued.
	otherDir := gatewayApp(t, map[string]any{"hostname": "kf.example.com", "serviceType": "ClusterIP"})
	if _, err := Generate(context.Background(), otherDir); err != nil {
		t.Fatal(err)
	}
	var otherStore map[string]string
	data, err := os.ReadFile(filepath.Join(otherDir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &otherStore); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := otherStore["ambassador/tls.crt"], otherStore["ambassador/tls.key"]
	dir := gatewayApp(t, map[string]any{"tlsCertFile": "gw.crt", "tlsKeyFile": "gw.key"})
	writeFile(t, filepath.Join(dir, "gw.crt"), certPEM)
	writeFile(t, filepath.Join(dir, "gw.key"), keyPEM)
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	store, _ := secrets.Load(dir)
	got, err := store.Certificate("ambassador", "tls")
	if err != nil || !slices.Contains(got.DNSNames, "kf.example.com") {
		t.Fatalf("stored certificate %v (%v), want the user's", got, err)
	}
	if _, _, err := CACertificate(dir); err == nil || !strings.Contains(err.Error(), "trust its issuer") {
		t.Errorf("CACertificate with the user's certificate: %v, want an error saying to trust its issuer", err)
	}

	writeFile(t, filepath.Join(dir, "gw.key"), "not a key")
	if _, err := Generate(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "gw.crt and gw.key must be a PEM certificate and its private key") {
		t.Errorf("generate with a broken key file: %v", err)
	}
}
