package secrets

import (
	"crypto/x509"
	"net"
	"strings"
)

// The app's CA carries X.509 name constraints (RFC 5280, 4.2.1.10), so that whoever holds
// secrets.yaml can issue certificates that browsers trusting the CA accept only for the app:
//
//   - DNS: each name the certificate is asked for (the `hostname`, `localhost`, the gateway
//     Service's short names, the nodes' host names known when the CA is made), which also
//     permits the names below it; a Service's in-cluster name NAME.NS.svc[.DOMAIN] becomes
//     NS.svc[.DOMAIN], every Service of the app's namespace, so that another of the app's
//     Services can be served from the same CA.
//   - IP: the private, shared and loopback ranges (RFC 1918 10/8, 172.16/12, 192.168/16;
//     RFC 6598 100.64/10; 127/8; link-local 169.254/16; IPv6 ULA fc00::/7, link-local fe80::/10,
//     ::1) and each public address asked for (externalIPs, public node addresses) exactly.
//     Nodes come and go with their addresses and are known only to the cluster; an address in a
//     private range names a host only inside a site's network, so a CA permitted those ranges
//     vouches for no public site, and a new node does not need a new CA. A new public address
//     does: the certificate leaves it out until the CA is rotated.
func privateRanges() []*net.IPNet {
	v4 := func(a, b byte, ones int) *net.IPNet {
		return &net.IPNet{IP: net.IPv4(a, b, 0, 0).To4(), Mask: net.CIDRMask(ones, 32)}
	}
	v6 := func(first byte, second byte, ones int) *net.IPNet {
		ip := make(net.IP, net.IPv6len)
		ip[0], ip[1] = first, second
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(ones, 128)}
	}
	return []*net.IPNet{
		v4(10, 0, 8), v4(172, 16, 12), v4(192, 168, 16), v4(100, 64, 10), v4(127, 0, 8), v4(169, 254, 16),
		v6(0xfc, 0, 7), v6(0xfe, 0x80, 10), {IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
}

// nameConstraints are the permitted DNS domains and IP ranges of a CA made for req.
func nameConstraints(req CertRequest) ([]string, []*net.IPNet) {
	dns, ips := splitNames(append(append(append([]string{}, req.DNSNames...), req.IPAddresses...), req.NodeAddresses...))
	var domains []string
	for _, d := range dns {
		domains = append(domains, serviceDomain(d))
	}
	domains = normalizeNames(domains)
	// A domain that another one already permits adds nothing.
	var minimal []string
	for _, d := range domains {
		covered := false
		for _, o := range domains {
			if o != d && dnsPermits(o, d) {
				covered = true
			}
		}
		if !covered {
			minimal = append(minimal, d)
		}
	}
	ranges := privateRanges()
	for _, ip := range ips {
		if ipInAny(ip, ranges) {
			continue
		}
		bits := 128
		if v4 := ip.To4(); v4 != nil {
			ip, bits = v4, 32
		}
		ranges = append(ranges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	return minimal, ranges
}

// serviceDomain turns NAME.NS.svc[.DOMAIN] into NS.svc[.DOMAIN]; other names stay as they are.
func serviceDomain(name string) string {
	labels := strings.Split(name, ".")
	for i := 2; i < len(labels); i++ {
		if labels[i] == "svc" {
			return strings.Join(labels[1:], ".")
		}
	}
	return name
}

// constrained reports whether a CA carries name constraints.
func constrained(ca *x509.Certificate) bool {
	return len(ca.PermittedDNSDomains) > 0 || len(ca.PermittedIPRanges) > 0
}

// permits reports whether ca may vouch for name (a DNS name or an IP address).
func permits(ca *x509.Certificate, name string) bool {
	if ip := net.ParseIP(name); ip != nil {
		return len(ca.PermittedIPRanges) == 0 || ipInAny(ip, ca.PermittedIPRanges)
	}
	if len(ca.PermittedDNSDomains) == 0 {
		return len(ca.PermittedIPRanges) == 0
	}
	for _, d := range ca.PermittedDNSDomains {
		if dnsPermits(d, name) {
			return true
		}
	}
	return false
}

// dnsPermits is RFC 5280's DNS constraint: "example.com" permits itself and its subdomains,
// ".example.com" only its subdomains.
func dnsPermits(constraint, name string) bool {
	constraint, name = strings.ToLower(constraint), strings.ToLower(name)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

func ipInAny(ip net.IP, ranges []*net.IPNet) bool {
	for _, r := range ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// Constraints describes component/name's CA's constraints for messages: its permitted DNS
// domains and IP ranges, or "" when the store has no CA or the CA has none.
func (s *Store) Constraints(component, name string) string {
	ca, err := parseCert(s.values[component+"/"+name+suffixCACert])
	if err != nil || !constrained(ca) {
		return ""
	}
	parts := append([]string{}, ca.PermittedDNSDomains...)
	for _, r := range ca.PermittedIPRanges {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// CAPermits reports whether component/name's CA may vouch for every name req asks for (true
// when there is no CA yet: one made now is constrained to them).
func (s *Store) CAPermits(component, name string, req CertRequest) bool {
	ca, err := parseCert(s.values[component+"/"+name+suffixCACert])
	if err != nil {
		return true
	}
	for _, n := range normalizeNames(append(append(append([]string{}, req.DNSNames...), req.IPAddresses...), req.NodeAddresses...)) {
		if !permits(ca, n) {
			return false
		}
	}
	return true
}
