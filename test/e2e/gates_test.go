//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdYAML is a namespaced CRD with one served version and an open schema.
func crdYAML(group, kind, plural string) string {
	return fmt.Sprintf(`---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[3]s.%[1]s
spec:
  group: %[1]s
  scope: Namespaced
  names: {kind: %[2]s, plural: %[3]s, singular: %[4]s, listKind: %[2]sList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group, kind, plural, strings.ToLower(kind))
}

func (e *env) deleteCRDsOfGroup(t *testing.T, group string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, err := e.dyn.Resource(crdResource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, item := range list.Items {
			if g, _, _ := unstructured.NestedString(item.Object, "spec", "group"); g == group {
				_ = e.dyn.Resource(crdResource).Delete(ctx, item.GetName(), metav1.DeleteOptions{})
			}
		}
	})
}

// TestCRDsDeadlineOneError: three CRDs that cannot become Established (their kinds are taken by
// CRDs already in the cluster) fail the apply at the one --timeout, with one error naming all
// three, not one timeout after another.
func TestCRDsDeadlineOneError(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	group := uniqueName("conflict") + ".e2e.kfdeploy.dev"
	e.deleteCRDsOfGroup(t, group)
	kinds := []string{"Alpha", "Bravo", "Charlie"}
	var taken, app strings.Builder
	for _, k := range kinds {
		taken.WriteString(crdYAML(group, k, strings.ToLower(k)+"s"))
		app.WriteString(crdYAML(group, k, strings.ToLower(k)+"twos"))
	}
	applyYAML(t, e, taken.String())
	for _, k := range kinds {
		name := strings.ToLower(k) + "s." + group
		eventually(t, time.Minute, name+" Established", func(ctx context.Context) (bool, error) {
			u, err := e.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			return err == nil && conditionTrue(u, "Established"), nil
		})
	}
	writeYAMLComponent(t, appDir, "conflicting", app.String())
	e.mustRun(t, appDir, "generate")
	const timeout = 15 * time.Second
	start := time.Now()
	r := e.run(t, appDir, "apply", "--skip-preflight", "--timeout", timeout.String())
	t.Logf("apply ended after %s with --timeout %s", time.Since(start).Round(time.Second), timeout)
	if r.code == 0 {
		t.Fatal("apply succeeded although its CRDs cannot become Established")
	}
	if n := strings.Count(r.stderr, "error:"); n != 1 {
		t.Errorf("%d errors, want one:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "3 CustomResourceDefinitions not Established") {
		t.Errorf("the error does not count the three CRDs:\n%s", r.stderr)
	}
	for _, k := range kinds {
		name := strings.ToLower(k) + "twos." + group
		if !strings.Contains(r.stderr, "CustomResourceDefinition "+name+": NamesAccepted False") {
			t.Errorf("the error does not name %s with its condition:\n%s", name, r.stderr)
		}
	}
}

// applyYAML creates objects in the cluster outside any app.
func applyYAML(t *testing.T, e *env, yamlText string) {
	t.Helper()
	for _, doc := range strings.Split(yamlText, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetKind() != "CustomResourceDefinition" {
			t.Fatalf("applyYAML creates CRDs only, not %s", u.GetKind())
		}
		if _, err := e.dyn.Resource(crdResource).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", u.GetName(), err)
		}
	}
}

// webhookCert is a self-signed serving certificate for a Service's DNS name, which is also its
// own CA bundle.
func webhookCert(t *testing.T, dnsName string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM
}

// admitAll answers AdmissionReviews with allowed and counts them.
func admitAll(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review map[string]any
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		calls.Add(1)
		req, _ := review["request"].(map[string]any)
		review["response"] = map[string]any{"uid": req["uid"], "allowed": true}
		delete(review, "request")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})
}

// serviceIP is a ClusterIP for the test's webhook Service: in the cluster's Service range
// (KFDEPLOY_SERVICE_CIDR, a loopback /16 by default), where this test can listen.
func serviceIP(t *testing.T) string {
	t.Helper()
	cidr := os.Getenv("KFDEPLOY_SERVICE_CIDR")
	if cidr == "" {
		cidr = "127.96.0.0/16"
	}
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil || !ipnet.IP.IsLoopback() {
		t.Fatalf("KFDEPLOY_SERVICE_CIDR=%q is not a loopback range", cidr)
	}
	ip := ipnet.IP.To4()
	if ones, _ := ipnet.Mask.Size(); ones > 16 {
		t.Fatalf("KFDEPLOY_SERVICE_CIDR=%q is smaller than a /16", cidr)
	}
	// The upper part of the range, away from the addresses the allocator hands out first.
	return fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], 200+mrand.IntN(50), 1+mrand.IntN(250))
}

// TestWebhookBackendBecomesReadyLater: custom resources admitted by a webhook whose backend is
// not ready yet wait for it (progress line "admission") and then apply with no error.
func TestWebhookBackendBecomesReadyLater(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	group := uniqueName("hooked") + ".e2e.kfdeploy.dev"
	e.deleteCRDsOfGroup(t, group)
	hookName := "widgets-" + strings.SplitN(group, ".", 2)[0]
	t.Cleanup(func() {
		_ = e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), hookName, metav1.DeleteOptions{})
	})

	ip := serviceIP(t)
	probe, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close() // nothing listens until the backend is "ready": the API server is refused
	cert, caPEM := webhookCert(t, "widget-webhook."+ns+".svc")

	// The namespace and the Service's endpoints (not ready) exist before the apply, as a
	// controller would have created them. EndpointSlice validation rejects loopback IPs, so the
	// endpoint is an FQDN under .localhost (loopback by RFC 6761): the API server dials the ClusterIP, where this test
	// listens, and the EndpointSlice only says whether the backend is ready.
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "widget-webhook-manual", Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: "widget-webhook", discoveryv1.LabelManagedBy: "e2e.kfdeploy.dev"}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"widget-webhook.localhost"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := e.kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the webhook's EndpointSlice: %v", err)
	}

	objects := crdYAML(group, "Widget", "widgets") + fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: widget-webhook, namespace: %[1]s}
spec:
  clusterIP: %[2]s
  ports: [{port: %[3]d, protocol: TCP}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: %[4]s}
webhooks:
  - name: validate.widgets.%[5]s
    clientConfig:
      service: {namespace: %[1]s, name: widget-webhook, port: %[3]d, path: /validate}
      caBundle: %[6]s
    rules:
      - {apiGroups: [%[5]s], apiVersions: [v1], resources: [widgets], operations: [CREATE, UPDATE]}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 5
`, ns, ip, port, hookName, group, base64.StdEncoding.EncodeToString(caPEM))
	for i := range 2 {
		objects += fmt.Sprintf("---\napiVersion: %s/v1\nkind: Widget\nmetadata: {name: w%d, namespace: %s}\nspec: {size: %d}\n", group, i, ns, i)
	}
	writeYAMLComponent(t, appDir, "widgets", objects)
	e.mustRun(t, appDir, "generate")

	run := e.start(t, appDir, "apply", "--skip-preflight", "--timeout", "3m")
	run.waitFor(t, "admission: 0/1", 2*time.Minute)
	time.Sleep(3 * time.Second) // the backend takes a while to come up

	var calls atomic.Int64
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatalf("listen on %s:%d: %v", ip, port, err)
	}
	srv := &http.Server{Handler: admitAll(&calls), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	slice.Endpoints[0].Conditions.Ready = ptr.To(true)
	if _, err := e.kube.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := run.wait(t)
	if code != 0 {
		t.Fatalf("apply failed after the webhook's backend became ready:\n%s", stderr)
	}
	if calls.Load() < 2 {
		t.Errorf("the webhook admitted %d requests, want at least the two Widgets", calls.Load())
	}
	for i := range 2 {
		if _, err := e.dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns).
			Get(ctx, fmt.Sprintf("w%d", i), metav1.GetOptions{}); err != nil {
			t.Errorf("Widget w%d: %v", i, err)
		}
	}
}
