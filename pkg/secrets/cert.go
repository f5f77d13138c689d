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
	// suffixCALost marks a serving certificate that apply took from the cluster because
	// secrets.yaml had no key of the CA that signed it: it is kept as it is, never re-issued,
	// until the CA is rotated (RotateCA).
	suffixCALost = ".ca-key-missing"
)

// Lifetimes: the CA outlives many serving certificates (users trust it once per five years;
// its name constraints keep it from vouching for anything but the app); a serving certificate
// stays within the 398 days that browsers accept, and is re-issued once it has less than
// renewBefore left.
const (
	caLifetime      = 5 * 365 * 24 * time.Hour
	servingLifetime = 397 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// CertPlaceholders are what a TLS Secret's stringData holds in manifests for component/name.
func CertPlaceholders(component, name string) (cert, key string) {
	return Placeholder(component, name+suffixCert), Placeholder(component, name+suffixKey)
}

// CACertPlaceholder is what a Secret's stringData holds in manifests for the certificate of the
// CA that issued component/name's certificate (for a client that trusts it by that file).
func CACertPlaceholder(component, name string) string {
	return Placeholder(component, name+suffixCACert)
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

// CertOutcome is what EnsureCertificate did, for the phase to tell the user.
type CertOutcome struct {
	// Issued: a new serving certificate was stored.
	Issued bool
	// Outside are requested names the CA's name constraints do not cover: the certificate
	// leaves them out (only a new CA can cover them, see RotateCA).
	Outside []string
	// CAKeyMissing: secrets.yaml holds no key of the CA that signed the stored certificate
	// (taken from the cluster by apply), so it was kept as it is, whatever its names and expiry.
	CAKeyMissing bool
	// NotAfter is when the stored certificate expires.
	NotAfter time.Time
	// Unconstrained: the CA has no name constraints (made by an older kfdeploy), so it can
	// vouch for any name.
	Unconstrained bool
}

// EnsureCertificate makes sure the store holds a serving certificate for component/name whose
// names are those of req that the CA may vouch for, signed by the app's CA (created the first
// time, constrained to req's names), and not about to expire; otherwise it issues one from the
// same CA. A certificate the user supplied (SetCertificate) is replaced: the app asks for
// kfdeploy's again. A certificate whose CA key is missing is kept as it is.
func (s *Store) EnsureCertificate(component, name string, req CertRequest) (CertOutcome, error) {
	return s.ensureCertificate(component, name, req, time.Now)
}

func (s *Store) ensureCertificate(component, name string, req CertRequest, now clock) (CertOutcome, error) {
	key := component + "/" + name
	var out CertOutcome
	if s.values[key+suffixNodes] != strings.Join(normalizeNames(req.NodeAddresses), ",") {
		s.values[key+suffixNodes] = strings.Join(normalizeNames(req.NodeAddresses), ",")
		s.dirty = true
	}
	if s.values[key+suffixCALost] != "" {
		cur, err := parseCert(s.values[key+suffixCert])
		if err != nil {
			return out, fmt.Errorf("%s: %s has neither a usable certificate nor the key of its CA: %w (rotate the CA: kfdeploy apply --rotate-ca)", s.path, key, err)
		}
		out.CAKeyMissing, out.NotAfter = true, cur.NotAfter
		return out, nil
	}
	caCert, caKey, err := s.ensureCA(key, req, now)
	if err != nil {
		return out, err
	}
	out.Unconstrained = !constrained(caCert)
	all := append(append(append([]string{}, req.DNSNames...), req.IPAddresses...), req.NodeAddresses...)
	var names []string
	for _, n := range normalizeNames(all) {
		if permits(caCert, n) {
			names = append(names, n)
		} else {
			out.Outside = append(out.Outside, n)
		}
	}
	dns, ips := splitNames(names)
	if cur, err := parseCert(s.values[key+suffixCert]); err == nil &&
		cur.CheckSignatureFrom(caCert) == nil &&
		now().Add(renewBefore).Before(cur.NotAfter) &&
		slices.Equal(certNames(cur), names) {
		out.NotAfter = cur.NotAfter
		return out, nil
	}
	cn := req.CommonName
	if !slices.Contains(names, strings.ToLower(cn)) {
		cn = ""
	}
	certPEM, keyPEM, notAfter, err := issue(caCert, caKey, cn, dns, ips, now)
	if err != nil {
		return out, fmt.Errorf("issue certificate %s: %w", key, err)
	}
	s.values[key+suffixCert], s.values[key+suffixKey] = certPEM, keyPEM
	s.dirty = true
	if s.made[key] == "" {
		s.made[key] = madeCert
	}
	out.Issued, out.NotAfter = true, notAfter
	return out, nil
}

// RotateCA forgets component/name's CA (and a certificate taken from the cluster): the next
// EnsureCertificate creates a new CA, constrained to the names it is asked for, and issues
// from it. Users must then trust the new CA.
func (s *Store) RotateCA(component, name string) {
	key := component + "/" + name
	for _, suffix := range []string{suffixCACert, suffixCAKey, suffixCALost} {
		if _, ok := s.values[key+suffix]; ok {
			delete(s.values, key+suffix)
			s.dirty = true
		}
	}
}

// What a Store made in this run, for Made.
const (
	madeCA   = "ca"
	madeCert = "certificate"
)

// Made reports what this Store (since Load) did for component/name: created a new CA (and a
// certificate from it), or issued a certificate from the CA it already had.
func (s *Store) Made(component, name string) (newCA, issued bool) {
	m := s.made[component+"/"+name]
	return m == madeCA, m != ""
}

// CAKeyMissing reports whether component/name's certificate was taken from the cluster without
// the key of the CA that signed it.
func (s *Store) CAKeyMissing(component, name string) bool {
	return s.values[component+"/"+name+suffixCALost] != ""
}

// SignedByStoredCA reports whether certPEM was issued by the CA secrets.yaml holds for
// component/name, with that CA's key at hand: then the store may re-issue it, and its own
// certificate is the one to serve.
func (s *Store) SignedByStoredCA(component, name, certPEM string) bool {
	key := component + "/" + name
	if s.values[key+suffixCALost] != "" {
		return false
	}
	ca, err := parseCert(s.values[key+suffixCACert])
	if err != nil {
		return false
	}
	if _, err := parseKey(s.values[key+suffixCAKey]); err != nil {
		return false
	}
	cur, err := parseCert(certPEM)
	return err == nil && cur.CheckSignatureFrom(ca) == nil
}

// AdoptCertificate stores the serving certificate and key that the cluster serves for
// component/name, which the stored CA did not sign: the CA (and its key) that secrets.yaml holds
// is dropped, as it issued nothing that is served, and the certificate is kept as it is until
// the CA is rotated. It reports whether the store changed.
func (s *Store) AdoptCertificate(component, name, certPEM, keyPEM string) (bool, error) {
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		return false, fmt.Errorf("the cluster's certificate of %s/%s: %w", component, name, err)
	}
	key := component + "/" + name
	changed := s.values[key+suffixCert] != certPEM || s.values[key+suffixKey] != keyPEM || s.values[key+suffixCALost] == ""
	if !changed {
		return false, nil
	}
	s.RotateCA(component, name)
	s.values[key+suffixCert], s.values[key+suffixKey] = certPEM, keyPEM
	s.values[key+suffixCALost] = "true"
	s.dirty = true
	return true, nil
}

// AdoptIssuedCertificate is AdoptCertificate for a certificate the cluster serves together with
// the certificate of the CA that issued it (caPEM), which the store keeps, without its key, as
// the certificate's CA (IssuerCertificate): for a certificate trusted by the CA given to a
// client with it (a webhook's caBundle), not by users. It reports whether the store changed.
func (s *Store) AdoptIssuedCertificate(component, name, certPEM, keyPEM, caPEM string) (bool, error) {
	key := component + "/" + name
	ca, err := parseCert(caPEM)
	if err != nil {
		return false, fmt.Errorf("the cluster's CA of %s: %w", key, err)
	}
	cur, err := parseCert(certPEM)
	if err != nil {
		return false, fmt.Errorf("the cluster's certificate of %s: %w", key, err)
	}
	if err := cur.CheckSignatureFrom(ca); err != nil {
		return false, fmt.Errorf("the cluster's certificate of %s was not issued by the CA it is served with: %w", key, err)
	}
	changed, err := s.AdoptCertificate(component, name, certPEM, keyPEM)
	if err != nil {
		return false, err
	}
	if s.values[key+suffixCACert] != caPEM {
		s.values[key+suffixCACert] = caPEM
		s.dirty, changed = true, true
	}
	return changed, nil
}

// IssuerCertificate returns the PEM of the CA that issued component/name's certificate: the
// store's CA, or the one taken from the cluster with the certificate (AdoptIssuedCertificate).
// Unlike CACertificate it is not meant for users to trust.
func (s *Store) IssuerCertificate(component, name string) (string, error) {
	key := component + "/" + name
	ca, err := parseCert(s.values[key+suffixCACert])
	if err != nil {
		return "", fmt.Errorf("%s holds no CA for %s: run 'kfdeploy generate' first", s.path, key)
	}
	if cur, err := parseCert(s.values[key+suffixCert]); err != nil || cur.CheckSignatureFrom(ca) != nil {
		return "", fmt.Errorf("%s: the certificate of %s was not issued by its stored CA", s.path, key)
	}
	return s.values[key+suffixCACert], nil
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
	if s.values[key+suffixCALost] != "" {
		return "", fmt.Errorf("%s does not hold the CA that issued the certificate of %s (apply took the certificate from the cluster after secrets.yaml lost it): restore secrets.yaml from a backup, or rotate the CA with 'kfdeploy apply --rotate-ca' (users then trust the new CA)", s.path, key)
	}
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

// ensureCA returns component/name's CA, creating it the first time, constrained to the names
// of req (see nameConstraints).
func (s *Store) ensureCA(key string, req CertRequest, now clock) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if c, err := parseCert(s.values[key+suffixCACert]); err == nil {
		k, err := parseKey(s.values[key+suffixCAKey])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: CA key of %s: %w (restore the file from a backup, or rotate the CA with 'kfdeploy apply --rotate-ca', after which users must trust the new CA)", s.path, key, err)
		}
		return c, k, nil
	}
	dnsDomains, ipRanges := nameConstraints(req)
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
		// Critical, so that a client that cannot check the constraints rejects the CA rather
		// than trusting it for every name (RFC 5280, 4.2.1.10).
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         dnsDomains,
		PermittedIPRanges:           ipRanges,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA %s: %w", key, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key %s: %w", key, err)
	}
	s.made[key] = madeCA
	s.values[key+suffixCACert] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	s.values[key+suffixCAKey] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	s.dirty = true
	c, err := x509.ParseCertificate(der)
	return c, k, err
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, dns []string, ips []net.IP, now clock) (string, string, time.Time, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", time.Time{}, err
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
		return "", "", time.Time{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), tmpl.NotAfter, nil
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
