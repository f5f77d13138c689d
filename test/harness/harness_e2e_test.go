//go:build e2e

package harness_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kfdeploy/kfdeploy/test/harness"
)

// TestHarness runs testdata/selftest in place of a Deployment and checks each
// stand-in: the ServiceAccount token, Service DNS through the hosts file, a
// forwarded stand-in Service, HTTPS served behind a ClusterIP, the private
// /tmp, scaling down, and that Close kills the process.
func TestHarness(t *testing.T) {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG must name the local test cluster: run with 'make e2e'")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	bin := filepath.Join(t.TempDir(), "selftest")
	build := exec.Command("go", "build", "-o", bin, "./testdata/selftest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/selftest: %v\n%s", err, out)
	}

	ns := fmt.Sprintf("harness-%d", time.Now().UnixNano()%1e9)
	mustCreate(t, func() error {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	// The Service the program serves behind, and a stand-in Service that
	// the test forwards to a local backend.
	svc, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "selftest"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "selftest"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(svc.Spec.ClusterIP); ip == nil || !ip.IsLoopback() {
		t.Fatalf("service ClusterIP %s is not a loopback address: the cluster needs a KFDEPLOY_SERVICE_CIDR inside 127.0.0.0/8", svc.Spec.ClusterIP)
	}
	mustCreate(t, func() error {
		_, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "backend"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}},
		}, metav1.CreateOptions{})
		return err
	})
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "backend-ok") })}
	go srv.Serve(backend)
	t.Cleanup(func() { srv.Close() })

	serverName := "selftest." + ns + ".svc"
	caPEM, certPEM, keyPEM := testCerts(t, serverName)
	mustCreate(t, func() error {
		_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "selftest-certs"},
			Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "selftest-config"},
			Data:       map[string]string{"greeting": "hello"},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "selftest"}}, metav1.CreateOptions{})
		return err
	})
	one := int32(1)
	labels := map[string]string{"app": "selftest"}
	mustCreate(t, func() error {
		_, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "selftest"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						ServiceAccountName: "selftest",
						Containers: []corev1.Container{{
							Name:    "main",
							Image:   "selftest.invalid/selftest:v1",
							Command: []string{"/selftest"},
							Args: []string{"--listen=:$(PORT)", "--cert-dir=/etc/selftest/certs",
								"--greeting-file=/etc/selftest/config/greeting", "--dial=http://backend." + ns + ":8080/"},
							Env: []corev1.EnvVar{
								{Name: "PORT", Value: "8443"},
								{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							},
							Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}},
							VolumeMounts: []corev1.VolumeMount{
								{Name: "certs", MountPath: "/etc/selftest/certs", ReadOnly: true},
								{Name: "config", MountPath: "/etc/selftest/config", ReadOnly: true},
							},
						}},
						Volumes: []corev1.Volume{
							{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "selftest-certs"}}},
							{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "selftest-config"}}}},
						},
					},
				},
			},
		}, metav1.CreateOptions{})
		return err
	})

	h, err := harness.New(ctx, cfg, harness.Options{Dir: t.TempDir(), Logf: t.Logf, Resync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Forward(ctx, ns, "backend", 8080, backend.Addr().String()); err != nil {
		t.Fatal(err)
	}
	// Another local port than the container's: the Service forwarding must
	// follow Program.Ports.
	local := freePort(t)
	p, err := h.Start(ctx, harness.Program{
		Binary: bin, Namespace: ns, Deployment: "selftest",
		Args:  func(a []string) []string { return harness.SetFlag(a, "--listen", fmt.Sprintf("127.0.0.1:%d", local)) },
		Ports: map[int32]int32{8443: int32(local)},
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, re := range []string{
		`^whoami: system:serviceaccount:` + ns + `:selftest$`,
		`^dial: backend-ok$`,
		`^serving on 127\.0\.0\.1:`,
	} {
		if _, err := p.WaitLog(wctx, regexp.MustCompile(re)); err != nil {
			t.Fatal(err)
		}
	}
	// The ServiceAccount has no RBAC to list Secrets: Forbidden() reports it.
	if f := p.Forbidden(); len(f) != 1 || !strings.Contains(f[0], "list secrets") {
		t.Errorf("Forbidden() = %q, want the refused list of secrets", f)
	}
	if _, err := os.Stat("/tmp/selftest-scratch"); err == nil {
		os.Remove("/tmp/selftest-scratch")
		t.Error("the program wrote into the host's /tmp, not its private one")
	}

	// HTTPS through the ClusterIP, verified against the test CA by the
	// Service's DNS name, as the API server calls a webhook.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}}
	var body string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		resp, err := client.Get("https://" + net.JoinHostPort(svc.Spec.ClusterIP, "443") + "/")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true, nil
	})
	if err != nil {
		t.Fatalf("GET https://%s:443 (service selftest): %v", svc.Spec.ClusterIP, err)
	}
	if body != "hello from selftest-harness" {
		t.Errorf("response through the ClusterIP: %q, want the ConfigMap's greeting and the pod name", body)
	}

	// Scaled to 0, and back to 0 after something (an apply) scales it up.
	waitReplicas(t, kube, ns, 0)
	if _, err := kube.AppsV1().Deployments(ns).Patch(ctx, "selftest", "application/merge-patch+json", []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, kube, ns, 0)

	pid := p.Pid()
	h.Close()
	select {
	case <-p.Exited():
	default:
		t.Fatal("the process still runs after Close")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("pid %d still exists after Close", pid)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(svc.Spec.ClusterIP, "443"), time.Second); err == nil {
		c.Close()
		t.Error("the ClusterIP still accepts connections after Close")
	}
}

func mustCreate(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func waitReplicas(t *testing.T, kube kubernetes.Interface, ns string, want int32) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "selftest", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Spec.Replicas != nil && *d.Spec.Replicas == want, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/selftest not at %d replicas: %v", ns, want, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCerts returns a CA and a serving certificate for name signed by it.
func testCerts(t *testing.T, name string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "harness test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
