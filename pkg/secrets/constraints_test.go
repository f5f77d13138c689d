package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// appRequest is what the gateway of an app in namespace kubeflow asks for.
func appRequest() CertRequest {
	return CertRequest{
		CommonName:    "kf.example.com",
		DNSNames:      []string{"kf.example.com", "ambassador", "ambassador.kubeflow", "ambassador.kubeflow.svc", "ambassador.kubeflow.svc.cluster.local", "localhost"},
		IPAddresses:   []string{"127.0.0.1", "::1", "198.51.100.7"},
		NodeAddresses: []string{"10.0.0.2", "node-1"},
	}
}

// foreign signs a certificate for names with the store's CA, as whoever holds secrets.yaml could.
func foreign(t *testing.T, s *Store, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	ca := certOf(t, s, "ambassador/tls"+suffixCACert)
	caKey, err := parseKey(s.values["ambassador/tls"+suffixCAKey])
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCAVouchesOnlyForTheApp verifies with crypto/x509, as a client trusting the app's CA
// does: the app's own serving certificate is accepted for each of its names, a certificate the
// same CA signs for a foreign name or public address is rejected, and another Service of the
// app's namespace may be served from the same CA.
func TestCAVouchesOnlyForTheApp(t *testing.T) {
	s, _ := Load(t.TempDir())
	if _, err := s.EnsureCertificate("ambassador", "tls", appRequest()); err != nil {
		t.Fatal(err)
	}
	ca := certOf(t, s, "ambassador/tls"+suffixCACert)
	if !ca.PermittedDNSDomainsCritical || len(ca.PermittedDNSDomains) == 0 || len(ca.PermittedIPRanges) == 0 {
		t.Fatalf("CA constraints: critical %v, DNS %v, IP %v", ca.PermittedDNSDomainsCritical, ca.PermittedDNSDomains, ca.PermittedIPRanges)
	}
	if ca.NotAfter.Sub(ca.NotBefore) > 5*366*24*time.Hour {
		t.Errorf("CA valid %v, want at most five years", ca.NotAfter.Sub(ca.NotBefore))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verify := func(c *x509.Certificate, name string) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
	serving := certOf(t, s, "ambassador/tls"+suffixCert)
	for _, name := range []string{"kf.example.com", "ambassador.kubeflow.svc", "ambassador.kubeflow.svc.cluster.local", "localhost", "127.0.0.1", "::1", "198.51.100.7", "10.0.0.2", "node-1"} {
		if err := verify(serving, name); err != nil {
			t.Errorf("the app's serving certificate as %s: %v", name, err)
		}
	}

	var invalid x509.CertificateInvalidError
	for _, c := range []struct {
		dns []string
		ips []net.IP
	}{
		{dns: []string{"www.example.org"}},
		{dns: []string{"example.com"}}, // the hostname's parent is not the app's
		{dns: []string{"kubernetes.default.svc"}},
		{ips: []net.IP{net.ParseIP("203.0.113.9")}},
	} {
		f := foreign(t, s, c.dns, c.ips)
		name := strings.Join(c.dns, "")
		if len(c.ips) > 0 {
			name = c.ips[0].String()
		}
		err := verify(f, name)
		if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("a certificate the app's CA signed for %s: %v, want rejected as outside the CA's names", name, err)
		}
	}
	// Another Service of the app's namespace, a private address: inside.
	if err := verify(foreign(t, s, []string{"katib-ui.kubeflow.svc.cluster.local"}, []net.IP{net.ParseIP("10.9.8.7")}), "katib-ui.kubeflow.svc.cluster.local"); err != nil {
		t.Errorf("another Service of the namespace: %v", err)
	}
}

// TestCertificateOutsideConstraints: a name the CA was not made for is left out of a
// re-issued certificate and reported; the CA stays; RotateCA makes one that covers it.
func TestCertificateOutsideConstraints(t *testing.T) {
	s, _ := Load(t.TempDir())
	req := appRequest()
	if _, err := s.EnsureCertificate("ambassador", "tls", req); err != nil {
		t.Fatal(err)
	}
	ca := certOf(t, s, "ambassador/tls"+suffixCACert)
	req.DNSNames = append(req.DNSNames, "kubeflow.example.org")
	req.NodeAddresses = append(req.NodeAddresses, "10.0.0.3") // a new node, private: inside
	out, err := s.EnsureCertificate("ambassador", "tls", req)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Issued || !slices.Equal(out.Outside, []string{"kubeflow.example.org"}) {
		t.Errorf("outcome %+v, want re-issued with kubeflow.example.org outside", out)
	}
	c := certOf(t, s, "ambassador/tls"+suffixCert)
	if slices.Contains(c.DNSNames, "kubeflow.example.org") || !slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("10.0.0.3")) }) {
		t.Errorf("re-issued certificate names %v %v", c.DNSNames, c.IPAddresses)
	}
	if !certOf(t, s, "ambassador/tls"+suffixCACert).Equal(ca) {
		t.Error("a name outside the constraints made a new CA")
	}
	s.RotateCA("ambassador", "tls")
	out, err = s.EnsureCertificate("ambassador", "tls", req)
	if err != nil || !out.Issued || len(out.Outside) > 0 {
		t.Fatalf("after RotateCA: %+v, %v", out, err)
	}
	if newCA, _ := s.Made("ambassador", "tls"); !newCA || certOf(t, s, "ambassador/tls"+suffixCACert).Equal(ca) {
		t.Error("RotateCA kept the old CA")
	}
}

// TestAdoptCertificateKeptWithoutCAKey: a certificate taken from the cluster, whose CA key
// secrets.yaml lacks, is kept whatever is asked, and 'kfdeploy ca' says how to get a CA back.
func TestAdoptCertificateKeptWithoutCAKey(t *testing.T) {
	served, _ := Load(t.TempDir())
	if _, err := served.EnsureCertificate("ambassador", "tls", appRequest()); err != nil {
		t.Fatal(err)
	}
	crt, key := served.values["ambassador/tls.crt"], served.values["ambassador/tls.key"]

	s, _ := Load(t.TempDir()) // a fresh checkout: its own new CA
	if _, err := s.EnsureCertificate("ambassador", "tls", appRequest()); err != nil {
		t.Fatal(err)
	}
	if s.SignedByStoredCA("ambassador", "tls", crt) {
		t.Fatal("another CA's certificate counted as the store's")
	}
	if changed, err := s.AdoptCertificate("ambassador", "tls", crt, key); err != nil || !changed {
		t.Fatalf("adopt: %v, %v", changed, err)
	}
	if changed, _ := s.AdoptCertificate("ambassador", "tls", crt, key); changed {
		t.Error("adopting the same certificate again changed the store")
	}
	req := appRequest()
	req.DNSNames = append(req.DNSNames, "new.example.com")
	out, err := s.EnsureCertificate("ambassador", "tls", req)
	if err != nil || out.Issued || !out.CAKeyMissing {
		t.Fatalf("ensure without the CA key: %+v, %v; want kept", out, err)
	}
	if s.values["ambassador/tls.crt"] != crt {
		t.Error("the adopted certificate was replaced")
	}
	if _, err := s.CACertificate("ambassador", "tls"); err == nil || !strings.Contains(err.Error(), "--rotate-ca") {
		t.Errorf("CACertificate without the CA: %v", err)
	}
	if _, err := s.AdoptCertificate("ambassador", "tls", crt, s.values["ambassador/tls.ca.key"]+"x"); err == nil {
		t.Error("a certificate with a key that is not its own was adopted")
	}
}

// TestLoadNamesReadableFile: a secrets.yaml that group or others may read is named, with the
// command that fixes it; a private one is not.
func TestLoadNamesReadableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("a/b: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "chmod 600") || strings.Contains(w[0], "c\n") {
		t.Errorf("warnings %q, want one naming %s and chmod 600", w, path)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, _ := Load(dir); len(s.Warnings()) != 0 {
		t.Errorf("a 0600 file warned: %q", s.Warnings())
	}
}

// TestAdopt: the cluster's value is taken for the placeholders of a key's template, whole or
// within a larger value; a value of another shape is not taken.
func TestAdopt(t *testing.T) {
	s, _ := Load(t.TempDir())
	ph, _ := s.Ensure("katib", "mysqlPassword")
	if keys, ok := s.Adopt(ph, "live-pw"); !ok || !slices.Equal(keys, []string{"katib/mysqlPassword"}) || s.values["katib/mysqlPassword"] != "live-pw" {
		t.Errorf("whole value: %v %v, stored %q", keys, ok, s.values["katib/mysqlPassword"])
	}
	if keys, ok := s.Adopt(ph, "live-pw"); !ok || len(keys) != 0 {
		t.Errorf("same value again: %v %v, want nothing taken", keys, ok)
	}
	tmpl := "mysql://root:" + Placeholder("katib", "root") + "@db/" + Placeholder("katib", "db")
	if keys, ok := s.Adopt(tmpl, "mysql://root:r00t@db/katib"); !ok || len(keys) != 2 || s.values["katib/root"] != "r00t" || s.values["katib/db"] != "katib" {
		t.Errorf("embedded: %v %v", keys, ok)
	}
	if _, ok := s.Adopt(tmpl, "postgres://x"); ok {
		t.Error("a value of another shape was taken")
	}
	// A value of several lines (an htpasswd file, a PEM block).
	file := "admin:$2a$10$abc\nalice:$2a$10$def\n"
	if keys, ok := s.Adopt(Placeholder("gateway", "htpasswd"), file); !ok || len(keys) != 1 || s.values["gateway/htpasswd"] != file {
		t.Errorf("lines: %v %v, stored %q", keys, ok, s.values["gateway/htpasswd"])
	}
	if keys, ok := s.Adopt("users:\n"+Placeholder("gateway", "list")+"\nend", "users:\na\nb\nend"); !ok || len(keys) != 1 || s.values["gateway/list"] != "a\nb" {
		t.Errorf("lines inside a template: %v %v, stored %q", keys, ok, s.values["gateway/list"])
	}
}
