package render

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// gatewayResources are the Emissary resources the ambassador component puts on its admin Service.
func gatewayResources(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	t.Helper()
	return emissaryDocs(t, find(t, objs, "Service", "ambassador-admin"))
}

func gatewayResource(t *testing.T, objs []*unstructured.Unstructured, kind string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range gatewayResources(t, objs) {
		if r["kind"] == kind {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %ss on ambassador-admin, want 1", len(found), kind)
	}
	return found[0]
}

func field(r map[string]any, path ...string) any {
	var v any = r
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// TestGatewayTLSObjects holds the default TLS configuration against Emissary v4.1.0:
//   - Listener (pkg/api/getambassador.io/v3alpha1/crd_listener.go@v4.1.0): protocol HTTPS is the
//     stack TLS;HTTP;TCP; securityModel XFP decides security by X-Forwarded-Proto. Upstream's
//     chart has the same Listener on 8443 (charts/emissary-ingress/templates/listener.yaml@v4.1.0).
//   - A TLS listener adds the TLS inspector and, beside each Host's TLS chain, one cleartext chain
//     (python/ambassador/src/ambassador/envoy/v3/v3listener.py@v4.1.0: the listener filter for
//     "TLS" in the stack, compute_httpchains, finalize_http), so one port serves both and a
//     cleartext request gets the Host's insecure action there.
//   - Host (crd_host.go@v4.1.0): tlsSecret is a SecretReference (name, in the Host's namespace
//     when none is given: irhost.py@v4.1.0, setup), requestPolicy.insecure.action ∈ Redirect,
//     Reject, Route (default Redirect, irhost.py@v4.1.0); no acmeProvider, so no ACME.
//   - The Secret is a kubernetes.io/tls one (tls.crt, tls.key), as in upstream's Host test data
//     (cmd/entrypoint/testdata/hostsem-basic.yaml@v4.1.0).
func TestGatewayTLSObjects(t *testing.T) {
	objs := render(t, "ambassador", nil)

	l := gatewayResource(t, objs, "Listener")
	if l["protocol"] != "HTTPS" || l["securityModel"] != "XFP" || fmt.Sprint(l["port"]) != "8443" {
		t.Errorf("Listener %v: protocol %v, securityModel %v, port %v; want HTTPS, XFP, 8443", l["name"], l["protocol"], l["securityModel"], l["port"])
	}
	if field(l, "hostBinding", "namespace", "from") != "SELF" {
		t.Errorf("Listener binds Hosts from %v, want SELF", field(l, "hostBinding", "namespace", "from"))
	}

	h := gatewayResource(t, objs, "Host")
	if h["hostname"] != "*" || field(h, "tlsSecret", "name") != "ambassador-tls" || field(h, "tlsSecret", "namespace") != nil {
		t.Errorf("Host: hostname %v, tlsSecret %v; want *, ambassador-tls of its own namespace", h["hostname"], h["tlsSecret"])
	}
	if field(h, "requestPolicy", "insecure", "action") != "Redirect" {
		t.Errorf("Host: insecure action %v, want Redirect by default", field(h, "requestPolicy", "insecure", "action"))
	}
	for _, k := range []string{"acmeProvider", "tlsContext", "tls"} {
		if _, ok := h[k]; ok {
			t.Errorf("Host sets %s; the Secret alone configures its TLS", k)
		}
	}

	var sec corev1.Secret
	typed(t, objs, "Secret", "ambassador-tls", &sec)
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret ambassador-tls type %q, want kubernetes.io/tls", sec.Type)
	}
	if len(sec.Data)+len(sec.StringData) != 0 {
		t.Error("the rendered Secret holds data: the certificate is added by generate as placeholders, never by the component")
	}
	if sec.Annotations["kfdeploy.dev/certificate"] != "ambassador/tls" {
		t.Errorf("Secret certificate annotation %q, want ambassador/tls", sec.Annotations["kfdeploy.dev/certificate"])
	}

	var svc corev1.Service
	typed(t, objs, "Service", "ambassador", &svc)
	targets := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		targets[p.Port] = p.TargetPort.String()
	}
	if targets[443] != "https" || targets[80] != "https" {
		t.Errorf("Service ports %v: 443 and 80 must both lead to the HTTPS listener (cleartext is redirected there)", targets)
	}
	if svc.Annotations["kfdeploy.dev/gateway-scheme"] != "https" {
		t.Errorf("gateway scheme annotation %q, want https", svc.Annotations["kfdeploy.dev/gateway-scheme"])
	}
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "ambassador", &d)
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == "https" && p.ContainerPort == 8443 }) {
		t.Errorf("container ports %v, want https 8443 for the Listener", d.Spec.Template.Spec.Containers[0].Ports)
	}
}

// TestGatewaySANs: the names the issued certificate must cover, for each way of exposing the
// gateway. Node addresses are only known to apply, so the Secret asks for them.
func TestGatewaySANs(t *testing.T) {
	base := []string{"ambassador", "ambassador.kubeflow", "ambassador.kubeflow.svc", "ambassador.kubeflow.svc.cluster.local", "localhost"}
	for _, c := range []struct {
		params    map[string]any
		dns, ips  []string
		nodeAddrs bool
	}{
		{nil, base, []string{"127.0.0.1", "::1"}, true},
		{map[string]any{"serviceType": "ClusterIP"}, base, []string{"127.0.0.1", "::1"}, false},
		{map[string]any{"serviceType": "LoadBalancer"}, base, []string{"127.0.0.1", "::1"}, true},
		{map[string]any{"serviceType": "ClusterIP", "externalIPs": []any{"192.0.2.10", "2001:db8::1"}}, base, []string{"127.0.0.1", "::1", "192.0.2.10", "2001:db8::1"}, false},
		{map[string]any{"hostname": "kf.example.com"}, append([]string{"kf.example.com"}, base...), []string{"127.0.0.1", "::1"}, true},
	} {
		t.Run(fmt.Sprint(c.params), func(t *testing.T) {
			a := find(t, render(t, "ambassador", c.params), "Secret", "ambassador-tls").GetAnnotations()
			if got := strings.Split(a["kfdeploy.dev/certificate-dns-names"], ","); !slices.Equal(got, c.dns) {
				t.Errorf("DNS names %v, want %v", got, c.dns)
			}
			if got := strings.Split(a["kfdeploy.dev/certificate-ip-addresses"], ","); !slices.Equal(got, c.ips) {
				t.Errorf("IP addresses %v, want %v", got, c.ips)
			}
			if got := a["kfdeploy.dev/certificate-node-addresses"] == "true"; got != c.nodeAddrs {
				t.Errorf("node addresses asked for: %v, want %v", got, c.nodeAddrs)
			}
		})
	}
	svc := find(t, render(t, "ambassador", map[string]any{"hostname": "kf.example.com"}), "Service", "ambassador")
	if svc.GetAnnotations()["kfdeploy.dev/gateway-hostname"] != "kf.example.com" {
		t.Errorf("the gateway Service does not carry the hostname for the URLs: %v", svc.GetAnnotations())
	}
}

// TestGatewayTLSChoices: redirect off, TLS off, and the user's own certificate.
func TestGatewayTLSChoices(t *testing.T) {
	h := gatewayResource(t, render(t, "ambassador", map[string]any{"httpRedirect": false}), "Host")
	if field(h, "requestPolicy", "insecure", "action") != "Route" || field(h, "tlsSecret", "name") != "ambassador-tls" {
		t.Errorf("httpRedirect false: Host %v, want TLS with cleartext routed", h)
	}

	plain := render(t, "ambassador", map[string]any{"tls": false})
	if l := gatewayResource(t, plain, "Listener"); l["protocol"] != "HTTP" || fmt.Sprint(l["port"]) != "8080" {
		t.Errorf("tls false: Listener %v, want HTTP on 8080", l)
	}
	if kinds(plain)["Secret"] != 0 {
		t.Error("tls false still renders a certificate Secret")
	}
	if find(t, plain, "Service", "ambassador").GetAnnotations()["kfdeploy.dev/gateway-scheme"] != "http" {
		t.Error("tls false: the gateway Service must say http for the URLs")
	}

	own := render(t, "ambassador", map[string]any{"tlsSecretName": "corp-cert"})
	if kinds(own)["Secret"] != 0 {
		t.Error("tlsSecretName: kfdeploy must not render (and so own) a Secret of its own")
	}
	if field(gatewayResource(t, own, "Host"), "tlsSecret", "name") != "corp-cert" {
		t.Error("tlsSecretName does not reach the Host")
	}

	files := find(t, render(t, "ambassador", map[string]any{"tlsCertFile": "certs/gw.crt", "tlsKeyFile": "certs/gw.key"}), "Secret", "ambassador-tls")
	if files.GetAnnotations()["kfdeploy.dev/certificate-files"] != "certs/gw.crt,certs/gw.key" {
		t.Errorf("tlsCertFile/tlsKeyFile annotation %q", files.GetAnnotations()["kfdeploy.dev/certificate-files"])
	}

	for params, want := range map[string]map[string]any{
		"tlsCertFile and tlsKeyFile go together": {"tlsCertFile": "a.crt"},
		"not both":                               {"tlsCertFile": "a.crt", "tlsKeyFile": "a.key", "tlsSecretName": "x"},
		"hostname must be a DNS name":            {"hostname": "https://kf.example.com"},
		"tls must be a boolean":                  {"tls": "yes"},
	} {
		if _, err := library().Render("ambassador", want, goldenEnv(t, "ambassador")); err == nil || !strings.Contains(err.Error(), params) {
			t.Errorf("params %v: error %v, want one saying %q", want, err, params)
		}
	}
}
