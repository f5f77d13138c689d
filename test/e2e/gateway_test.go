//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// gatewayUIs are the components with a UI routed by the gateway.
const gatewayUIs = "core,ambassador,centraldashboard,jupyterhub,argo,katib,modeldb,tf-job-dashboard,k8s-dashboard"

// liveRoute is a Mapping served on the cluster with what its component says about it.
type liveRoute struct {
	Service, Name, Prefix, Backend string
	SignIn, Access, UI             string
	declared                       bool
}

// liveRoutes reads every Mapping of the namespace's Services (what Emissary would serve) and
// its kfdeploy.dev/routes entry.
func (e *env) liveRoutes(t *testing.T, ctx context.Context, ns string) map[string]liveRoute {
	t.Helper()
	svcs, err := e.kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]liveRoute{}
	for _, s := range svcs.Items {
		var declared map[string]struct{ Prefix, SignIn, Access, UI string }
		if a, ok := s.Annotations["kfdeploy.dev/routes"]; ok {
			if err := json.Unmarshal([]byte(a), &declared); err != nil {
				t.Fatalf("Service %s: kfdeploy.dev/routes: %v", s.Name, err)
			}
		}
		for _, doc := range strings.Split(s.Annotations["getambassador.io/config"], "---\n") {
			var r map[string]any
			if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
				t.Fatalf("Service %s: getambassador.io/config: %v", s.Name, err)
			}
			if r["kind"] != "Mapping" {
				continue
			}
			name := fmt.Sprint(r["name"])
			d, ok := declared[name]
			out[name] = liveRoute{Service: s.Name, Name: name, Prefix: fmt.Sprint(r["prefix"]), Backend: fmt.Sprint(r["service"]),
				SignIn: d.SignIn, Access: d.Access, UI: d.UI, declared: ok && d.Prefix == r["prefix"]}
		}
	}
	return out
}

// TestGatewayRoutesAndURLs: on the local cluster, with every UI component at its defaults,
// the gateway's routes are checked as data — each Mapping declares its sign-in, every open one
// is read-only, the open UIs that can write (Katib, Model Registry) are not routed, and each
// declared sign-in is backed by the workload's own configuration; the gateway's certificate
// covers the nodes' addresses and is signed by the CA 'kfdeploy ca' prints; apply's and
// status's last lines are the UIs' URLs at the gateway's node port. Emissary itself cannot run
// here (no Envoy): the routes are what it would read.
func TestGatewayRoutesAndURLs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", gatewayUIs)
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	// The databases' claims have no volume here and kwok runs no container: apply without
	// waiting, preflight's storage check aside. The routes and URLs need neither.
	applied := e.mustRun(t, appDir, "apply", "--skip-preflight", "--wait=false")

	routes := e.liveRoutes(t, ctx, ns)
	if len(routes) == 0 {
		t.Fatal("no Mapping on the cluster")
	}
	for _, r := range routes {
		switch {
		case !r.declared:
			t.Errorf("Mapping %s (Service %s) has no kfdeploy.dev/routes entry saying who may use it", r.Name, r.Service)
		case r.SignIn == "none" && r.Access != "read-only":
			t.Errorf("Mapping %s (%s) can write and requires no sign-in", r.Name, r.Prefix)
		case r.SignIn != "none" && !slices.Contains([]string{"password", "kubernetes-token", "notebook-token"}, r.SignIn):
			t.Errorf("Mapping %s: unknown sign-in %q", r.Name, r.SignIn)
		}
		if strings.HasPrefix(r.Prefix, "/katib/") || strings.HasPrefix(r.Prefix, "/model-registry/") {
			t.Errorf("Mapping %s routes %s by default, a UI that can write without sign-in", r.Name, r.Prefix)
		}
	}
	e.checkSignInBackedByWorkloads(t, ctx, ns, routes)

	// The gateway's certificate: issued at generate, widened at apply with the nodes' addresses.
	nodes, err := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "ambassador-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What the gateway loads: the applied Secret holds a certificate and its key, not placeholders.
	if _, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]); err != nil {
		t.Errorf("Secret ambassador-tls does not hold a certificate and its key: %v", err)
	}
	cert := parsePEMCert(t, sec.Data[corev1.TLSCertKey])
	ca := parsePEMCert(t, []byte(e.mustRun(t, appDir, "ca").stdout))
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Errorf("the gateway's certificate is not signed by the CA 'kfdeploy ca' prints: %v", err)
	}
	var sans []string
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !slices.Contains(sans, a.Address) {
				t.Errorf("certificate IP SANs %v lack node %s's address %s", sans, n.Name, a.Address)
			}
		}
	}
	if !slices.Contains(cert.DNSNames, "ambassador."+ns+".svc") {
		t.Errorf("certificate DNS SANs %v lack the Service's name", cert.DNSNames)
	}

	// The URLs: the last lines of apply and of status, at the node port the cluster chose.
	gw, err := e.kube.CoreV1().Services(ns).Get(ctx, "ambassador", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nodePort int32
	for _, p := range gw.Spec.Ports {
		if p.Name == "https" {
			nodePort = p.NodePort
		}
	}
	var wantURLs []string
	for _, r := range routes {
		if r.UI != "" {
			wantURLs = append(wantURLs, r.Prefix)
		}
	}
	if len(wantURLs) < 5 {
		t.Errorf("only %d UI entry points among the routes: %v", len(wantURLs), wantURLs)
	}
	status := e.mustRun(t, appDir, "status")
	for cmd, out := range map[string]string{"apply": applied.stdout, "status": status.stdout} {
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		tail := lines[max(0, len(lines)-len(wantURLs)):]
		for _, line := range tail {
			if !strings.Contains(line, "https://") || !strings.Contains(line, fmt.Sprintf(":%d/", nodePort)) {
				t.Errorf("%s: last lines must be the UIs' URLs at node port %d, got %q\n%s", cmd, nodePort, line, out)
				break
			}
		}
		for _, prefix := range wantURLs {
			if !slices.ContainsFunc(tail, func(l string) bool { return strings.Contains(l, fmt.Sprintf(":%d%s ", nodePort, prefix)) }) {
				t.Errorf("%s: no URL for %s in its last lines:\n%s", cmd, prefix, strings.Join(tail, "\n"))
			}
		}
	}

	e.mustRun(t, appDir, "delete", "--purge", "--yes")
}

// checkSignInBackedByWorkloads holds each declared sign-in against what the cluster runs: a
// route must not claim more protection than its program's configuration gives.
func (e *env) checkSignInBackedByWorkloads(t *testing.T, ctx context.Context, ns string, routes map[string]liveRoute) {
	t.Helper()
	args := func(deployment string) string {
		d, err := e.kube.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Deployment %s: %v", deployment, err)
		}
		var all []string
		for _, c := range d.Spec.Template.Spec.Containers {
			all = append(all, c.Args...)
		}
		return strings.Join(all, " ")
	}
	if r, ok := routes["argo"]; !ok || r.SignIn != "kubernetes-token" {
		t.Errorf("/argo/ route %+v, want one that requires a Kubernetes token", r)
	} else if a := args("argo-server"); !strings.Contains(a, "--auth-mode=client") {
		t.Errorf("/argo/ claims a token sign-in, but argo-server runs with %q", a)
	}
	if r := routes["jupyterhub-hub"]; r.SignIn != "password" {
		t.Errorf("/hub/ route %+v, want a password sign-in", r)
	}
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(ctx, "jupyterhub-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mapValues(cm.Data), func(v string) bool { return strings.Contains(v, `authenticator_class = "shared-password"`) }) {
		t.Error("/hub/ claims a password sign-in, but the hub's configuration sets no SharedPasswordAuthenticator")
	}
	// The open, read-only central dashboard writes through KFAM only, whose stand-in refuses
	// every write (centraldashboard/kfam.js).
	if r := routes["centraldashboard"]; r.SignIn != "none" || r.Access != "read-only" {
		t.Errorf("/ route %+v, want the read-only dashboard", r)
	}
	d, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "centraldashboard", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "kfam" }) {
		t.Error("the dashboard is declared read-only, but its KFAM stand-in (which refuses writes) is missing")
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("no PEM certificate in %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
