package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sort"
	"strings"
	"time"
)

// A certificate is kept in the store under component/name plus these suffixes: the CA that
// signs it (generated once, so users trust it once), the serving certificate and key, and
// the node addresses it was last issued for (see CertRequest.NodeAddresses).
const (
	suffixCACert = ".ca.crt"
	suffixCAKey  = ".ca.key"
	suffixCert   = ".crt"
	suffixKey    = ".key"
	suffixNodes  = ".nodes"
)

// Lifetimes: the CA outlives many serving certificates; a serving certificate stays within
// the 398 days that browsers accept, and is re-issued once it has less than renewBefore left.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	servingLifetime = 397 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// CertPlaceholders are what a TLS Secret's stringData holds in manifests for component/name.
func CertPlaceholders(component, name string) (cert, key string) {
	return Placeholder(component, name+suffixCert), Placeholder(component, name+suffixKey)
}

// CertRequest is what a serving certificate must cover.
type CertRequest struct {
	CommonName  string
	DNSNames    []string
	IPAddresses []string
	// NodeAddresses are added to the IP or DNS names; they are remembered separately so that
	// a later generate, which doesn't know the cluster's nodes, asks for the same set.
	NodeAddresses []string
}

// clock tells the time of certificate checks; tests pass their own.
type clock func() time.Time

// EnsureCertificate makes sure the store holds a serving certificate for component/name whose
// names are exactly those of req, signed by the app's CA (created the first time), and not
// about to expire; otherwise it issues one from the same CA. It reports whether it issued.
// A certificate the user supplied (SetCertificate) is replaced: the app asks for kfdeploy's
// again.
func (s *Store) EnsureCertificate(component, name string, req CertRequest) (bool, error) {
	return s.ensureCertificate(component, name, req, time.Now)
}

func (s *Store) ensureCertificate(component, name string, req CertRequest, now clock) (bool, error) {
	key := component + "/" + name
	if s.values[key+suffixNodes] != strings.Join(normalizeNames(req.NodeAddresses), ",") {
		s.values[key+suffixNodes] = strings.Join(normalizeNames(req.NodeAddresses), ",")
		s.dirty = true
	}
	caCert, caKey, err := s.ensureCA(key, now)
	if err != nil {
		return false, err
	}
	dns, ips := splitNames(append(append([]string{}, req.DNSNames...), append(req.IPAddresses, req.NodeAddresses...)...))
	if cur, err := parseCert(s.values[key+suffixCert]); err == nil &&
		cur.CheckSignatureFrom(caCert) == nil &&
		now().Add(renewBefore).Before(cur.NotAfter) &&
		slices.Equal(certNames(cur), normalizeNames(append(dns, ipStrings(ips)...))) {
		return false, nil
	}
	certPEM, keyPEM, err := issue(caCert, caKey, req.CommonName, dns, ips, now)
	if err != nil {
		return false, fmt.Errorf("issue certificate %s: %w", key, err)
	}
	s.values[key+suffixCert], s.values[key+suffixKey] = certPEM, keyPEM
	s.dirty = true
	return true, nil
}

// StoredNodeAddresses are the node addresses the certificate component/name was last issued for.
func (s *Store) StoredNodeAddresses(component, name string) []string {
	v := s.values[component+"/"+name+suffixNodes]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// SetCertificate stores a certificate and key the user supplied (PEM), after checking that
// they belong together; the generated CA, if any, is kept for a later switch back.
func (s *Store) SetCertificate(component, name string, certPEM, keyPEM []byte) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("certificate %s/%s: %w", component, name, err)
	}
	key := component + "/" + name
	if s.values[key+suffixCert] != string(certPEM) || s.values[key+suffixKey] != string(keyPEM) {
		s.values[key+suffixCert], s.values[key+suffixKey] = string(certPEM), string(keyPEM)
		s.dirty = true
	}
	return nil
}

// CACertificate returns the PEM of the CA that signs component/name's certificate. It is an
// error when the stored certificate was supplied by the user (not signed by that CA), or when
// there is no CA yet.
func (s *Store) CACertificate(component, name string) (string, error) {
	key := component + "/" + name
	if s.userSupplied(key) {
		return "", fmt.Errorf("the certificate of %s was supplied by you, not issued by kfdeploy's CA: trust its issuer instead", key)
	}
	ca, err := parseCert(s.values[key+suffixCACert])
	if err != nil {
		return "", fmt.Errorf("%s holds no CA for %s: run 'kfdeploy generate' first", s.path, key)
	}
	if !ca.IsCA {
		return "", fmt.Errorf("%s: the stored CA of %s is not a CA certificate", s.path, key)
	}
	return s.values[key+suffixCACert], nil
}

// Certificate returns the stored serving certificate of component/name, parsed.
func (s *Store) Certificate(component, name string) (*x509.Certificate, error) {
	return parseCert(s.values[component+"/"+name+suffixCert])
}

// userSupplied: a stored certificate exists that the stored CA did not sign.
func (s *Store) userSupplied(key string) bool {
	cur, err := parseCert(s.values[key+suffixCert])
	if err != nil {
		return false
	}
	ca, err := parseCert(s.values[key+suffixCACert])
	return err != nil || cur.CheckSignatureFrom(ca) != nil
}

func (s *Store) ensureCA(key string, now clock) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if c, err := parseCert(s.values[key+suffixCACert]); err == nil {
		k, err := parseKey(s.values[key+suffixCAKey])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: CA key of %s: %w (restore the file from a backup, or remove both CA lines to create a new CA that users must trust again)", s.path, key, err)
		}
		return c, k, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key %s: %w", key, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kfdeploy CA " + key, Organization: []string{"kfdeploy"}},
		NotBefore:             now().Add(-time.Hour),
		NotAfter:              now().Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA %s: %w", key, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key %s: %w", key, err)
	}
	s.values[key+suffixCACert] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	s.values[key+suffixCAKey] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	s.dirty = true
	c, err := x509.ParseCertificate(der)
	return c, k, err
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, dns []string, ips []net.IP, now clock) (string, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	if cn == "" && len(dns) > 0 {
		cn = dns[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"kfdeploy"}},
		NotBefore:    now().Add(-time.Hour),
		NotAfter:     now().Add(servingLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms; a fixed serial still yields a
		// valid certificate.
		return big.NewInt(1)
	}
	return n
}

func parseCert(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(s string) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key is %T, want ECDSA", k)
	}
	return ek, nil
}

// splitNames separates IP addresses from DNS names, normalized and without duplicates.
func splitNames(names []string) ([]string, []net.IP) {
	var dns []string
	var ips []net.IP
	for _, n := range normalizeNames(names) {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// certNames are a certificate's DNS and IP SANs in normalized form.
func certNames(c *x509.Certificate) []string {
	return normalizeNames(append(append([]string{}, c.DNSNames...), ipStrings(c.IPAddresses)...))
}

// normalizeNames lowercases, canonicalizes IPs, drops empties and duplicates, and sorts.
func normalizeNames(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
