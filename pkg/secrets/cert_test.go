package secrets

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func certOf(t *testing.T, s *Store, key string) *x509.Certificate {
	t.Helper()
	c, err := parseCert(s.values[key])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return c
}

func TestCertificateIssueKeepRenew(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	req := CertRequest{CommonName: "gw", DNSNames: []string{"gw.example.com", "GW.example.com"}, IPAddresses: []string{"192.0.2.1"}, NodeAddresses: []string{"10.0.0.2", "node-1"}}
	out, err := s.EnsureCertificate("ambassador", "tls", req)
	if err != nil || !out.Issued {
		t.Fatalf("first ensure: issued %v, %v", out.Issued, err)
	}
	c := certOf(t, s, "ambassador/tls.crt")
	ca := certOf(t, s, "ambassador/tls.ca.crt")
	if err := c.CheckSignatureFrom(ca); err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.2", "192.0.2.1", "gw.example.com", "node-1"}; !slices.Equal(certNames(c), want) {
		t.Errorf("SANs %v, want %v (names deduplicated, node addresses included)", certNames(c), want)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || c.IsCA || !ca.IsCA {
		t.Error("serving certificate must be a non-CA server certificate, the CA a CA")
	}
	if c.NotAfter.Sub(c.NotBefore) > 398*24*time.Hour {
		t.Errorf("serving certificate valid %v, beyond the 398 days browsers accept", c.NotAfter.Sub(c.NotBefore))
	}
	if got := s.StoredNodeAddresses("ambassador", "tls"); !slices.Equal(got, []string{"10.0.0.2", "node-1"}) {
		t.Errorf("stored node addresses %v", got)
	}

	// Same names in another order: kept.
	req.DNSNames = []string{"gw.example.com"}
	req.NodeAddresses = []string{"node-1", "10.0.0.2"}
	if out, err := s.EnsureCertificate("ambassador", "tls", req); err != nil || out.Issued {
		t.Errorf("same names: issued %v, %v; want kept", out.Issued, err)
	}
	// A node went away: re-issued from the same CA.
	req.NodeAddresses = []string{"node-1"}
	if out, _ := s.EnsureCertificate("ambassador", "tls", req); !out.Issued {
		t.Error("node addresses changed but the certificate was kept")
	}
	if !certOf(t, s, "ambassador/tls.ca.crt").Equal(ca) {
		t.Error("re-issue made a new CA")
	}
	// Near its end: renewed.
	late := func() time.Time { return time.Now().Add(servingLifetime - 10*24*time.Hour) }
	if out, _ := s.ensureCertificate("ambassador", "tls", req, late); !out.Issued {
		t.Error("a certificate with 10 days left was kept")
	}

	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, FileName))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	reloaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := reloaded.EnsureCertificate("ambassador", "tls", req); out.Issued {
		t.Error("a reloaded store re-issued an unchanged certificate")
	}
	pem, err := reloaded.CACertificate("ambassador", "tls")
	if err != nil || !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----") || strings.Contains(pem, "PRIVATE KEY") {
		t.Errorf("CACertificate: %q, %v; want the CA certificate only", pem, err)
	}
}

func TestCertificateUserSupplied(t *testing.T) {
	other, _ := Load(t.TempDir())
	if _, err := other.EnsureCertificate("a", "b", CertRequest{DNSNames: []string{"kf.example.com"}}); err != nil {
		t.Fatal(err)
	}
	s, _ := Load(t.TempDir())
	// A CA of its own first, as after an earlier generate.
	if _, err := s.EnsureCertificate("ambassador", "tls", CertRequest{DNSNames: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCertificate("ambassador", "tls", []byte(other.values["a/b.crt"]), []byte(other.values["a/b.key"])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CACertificate("ambassador", "tls"); err == nil || !strings.Contains(err.Error(), "supplied by you") {
		t.Errorf("CACertificate of a user-supplied certificate: %v", err)
	}
	// Back to kfdeploy's certificate: issued again from the CA kept meanwhile.
	if out, _ := s.EnsureCertificate("ambassador", "tls", CertRequest{DNSNames: []string{"x"}}); !out.Issued {
		t.Error("switching back from the user's certificate kept it")
	}
	if _, err := s.CACertificate("ambassador", "tls"); err != nil {
		t.Error(err)
	}
	if err := s.SetCertificate("ambassador", "tls", []byte(other.values["a/b.crt"]), []byte(s.values["ambassador/tls.ca.key"])); err == nil {
		t.Error("a certificate with another key was accepted")
	}
}

// TestCertificateServesTLS: the issued pair serves a real TLS handshake that a client trusting
// only the app's CA accepts, for each name and address in the request, and refuses for a name
// that is not. (The gateway cannot run here; this is what a browser trusting the CA checks.)
func TestCertificateServesTLS(t *testing.T) {
	s, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	req := CertRequest{CommonName: "gw", DNSNames: []string{"gw.example.com"}, IPAddresses: []string{"127.0.0.1"}, NodeAddresses: []string{"node-1.example.com"}}
	if _, err := s.EnsureCertificate("ambassador", "tls", req); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair([]byte(s.values["ambassador/tls"+suffixCert]), []byte(s.values["ambassador/tls"+suffixKey]))
	if err != nil {
		t.Fatalf("the stored certificate and key are not a pair: %v", err)
	}
	caPEM, err := s.CACertificate("ambassador", "tls")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatal("the CA certificate does not parse")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	dial := func(serverName string) error {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, name := range []string{"gw.example.com", "127.0.0.1", "node-1.example.com"} {
		if err := dial(name); err != nil {
			t.Errorf("handshake as %s: %v", name, err)
		}
	}
	if err := dial("other.example.com"); err == nil {
		t.Error("handshake as other.example.com succeeded; the certificate does not name it")
	}
}

// A certificate taken from the cluster with its CA's certificate (no key): kept as it is, its
// CA is its issuer (IssuerCertificate), never one for users (CACertificate); a certificate and
// CA that do not belong together are refused; a rotation forgets both.
func TestAdoptIssuedCertificate(t *testing.T) {
	s, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssuerCertificate("katib", "webhook"); err == nil {
		t.Error("IssuerCertificate of an empty store: no error")
	}
	req := CertRequest{DNSNames: []string{"katib-controller.ml.svc"}}
	other, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, other} {
		if _, err := st.EnsureCertificate("katib", "webhook", req); err != nil {
			t.Fatal(err)
		}
	}
	crt, key, ca := other.values["katib/webhook.crt"], other.values["katib/webhook.key"], other.values["katib/webhook.ca.crt"]

	if _, err := s.AdoptIssuedCertificate("katib", "webhook", crt, key, s.values["katib/webhook.ca.crt"]); err == nil {
		t.Error("adopted a certificate with a CA that did not issue it")
	}
	changed, err := s.AdoptIssuedCertificate("katib", "webhook", crt, key, ca)
	if err != nil || !changed {
		t.Fatalf("adopt: changed %v, %v", changed, err)
	}
	if changed, err := s.AdoptIssuedCertificate("katib", "webhook", crt, key, ca); err != nil || changed {
		t.Errorf("adopt again: changed %v, %v; want nothing new", changed, err)
	}
	if got, err := s.IssuerCertificate("katib", "webhook"); err != nil || got != ca {
		t.Errorf("IssuerCertificate after adoption: %v, want the cluster's CA", err)
	}
	if _, err := s.CACertificate("katib", "webhook"); err == nil {
		t.Error("CACertificate offers a CA whose key the store lacks")
	}
	if out, err := s.EnsureCertificate("katib", "webhook", req); err != nil || out.Issued || !out.CAKeyMissing || s.values["katib/webhook.crt"] != crt {
		t.Errorf("ensure after adoption: %+v, %v; want the cluster's certificate kept", out, err)
	}

	s.RotateCA("katib", "webhook")
	if out, err := s.EnsureCertificate("katib", "webhook", req); err != nil || !out.Issued {
		t.Fatalf("ensure after rotation: %+v, %v", out, err)
	}
	if got, err := s.IssuerCertificate("katib", "webhook"); err != nil || got == ca {
		t.Errorf("IssuerCertificate after rotation: %v; want the new CA", err)
	}
}
