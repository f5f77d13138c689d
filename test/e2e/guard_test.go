//go:build e2e

package e2e

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
)

// holdingProxy is the test cluster's API server behind a TLS reverse proxy of the test's, which
// holds every SelfSubjectAccessReview (sent by preflight's permissions check, and by nothing
// else of apply) until released: a run through it is stopped inside its preflight for as long as
// the test needs, with no timing involved.
type holdingProxy struct {
	srv     *httptest.Server
	arrived chan struct{} // closed when the first review arrives
	release chan struct{} // close to let the reviews through
	once    sync.Once
}

func newHoldingProxy(t *testing.T, e *env) *holdingProxy {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg) // authenticates as the test's user
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport, rp.FlushInterval = transport, -1
	p := &holdingProxy{arrived: make(chan struct{}), release: make(chan struct{})}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/selfsubjectaccessreviews") {
			p.once.Do(func() { close(p.arrived) })
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.letGo()
		p.srv.Close()
	})
	return p
}

func (p *holdingProxy) letGo() {
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// kubeconfig reaches the cluster through the proxy, verifying the proxy's certificate.
func (p *holdingProxy) kubeconfig(t *testing.T, contextName string) string {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.srv.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = contextName
	path := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestApplyLockedDuringPreflight: apply takes the app's lock before preflight. While a first
// apply is held inside its preflight (its access reviews held by a proxy), the app's Lease
// exists in the default namespace although the app's namespace does not yet, and a second
// apply fails naming the holder and writes nothing; released, the first apply finishes.
func TestApplyLockedDuringPreflight(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	proxy := newHoldingProxy(t, e)

	first := e.start(t, appDir, "apply", "--kubeconfig", proxy.kubeconfig(t, "through-proxy"), "--timeout", "2m")
	select {
	case <-proxy.arrived:
	case <-first.done:
		code, _, stderr := first.wait(t)
		t.Fatalf("the first apply ended (exit %d) before its preflight reviewed a permission:\n%s", code, stderr)
	case <-time.After(2 * time.Minute):
		t.Fatal("the first apply sent no access review within 2m")
	}

	set := inventory.ApplySet{App: "app", Namespace: ns}
	lease, err := e.kube.CoordinationV1().Leases(lock.Namespace).Get(ctx, lock.Name(set), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("during the first apply's preflight, its Lease %s/%s: %v", lock.Namespace, lock.Name(set), err)
	}
	holder := *lease.Spec.HolderIdentity
	if _, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("during preflight the app's namespace exists already (err %v): apply wrote before preflight", err)
	}

	second := e.run(t, appDir, "apply", "--timeout", "1m")
	if second.code != 1 || !strings.Contains(second.stderr, "another kfdeploy run ("+holder) ||
		!strings.Contains(second.stderr, lock.Namespace+"/"+lock.Name(set)) {
		t.Errorf("a second apply during the first one's preflight: exit %d, want 1 naming the holder %s and its Lease:\n%s", second.code, holder, second.stderr)
	}
	if _, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused apply wrote the app's namespace (err %v)", err)
	}

	proxy.letGo()
	if code, _, stderr := first.wait(t); code != 0 {
		t.Fatalf("the first apply, released: exit %d\n%s", code, stderr)
	}
	if _, err := e.kube.CoordinationV1().Leases(lock.Namespace).Get(ctx, lock.Name(set), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease is still there after the apply: %v", err)
	}
}

// TestLockOutlivesTheAppNamespace: the Lease is taken before the app's namespace exists and is
// renewed after the namespace is gone, in the default namespace, never in the app's.
func TestLockOutlivesTheAppNamespace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("e2e-lock")
	e.cleanupNamespace(t, ns)
	c := e.engineClient(t, nil)
	c.LockTiming = kube.LockTiming{Duration: 10 * time.Second, RenewDeadline: 6 * time.Second, RetryPeriod: 200 * time.Millisecond}
	set := inventory.ApplySet{App: "app", Namespace: ns}
	held, err := lock.Acquire(ctx, c, set)
	if err != nil {
		t.Fatalf("the lock of an app whose namespace does not exist: %v", err)
	}
	defer held.Release()
	leases := e.kube.CoordinationV1().Leases(lock.Namespace)
	renewed := func() *metav1.MicroTime {
		l, err := leases.Get(ctx, lock.Name(set), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Lease %s/%s: %v", lock.Namespace, lock.Name(set), err)
		}
		if l.Labels[inventory.LabelApp] != "app" {
			t.Errorf("Lease labels %v", l.Labels)
		}
		return l.Spec.RenewTime
	}

	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, nsObject(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := e.kube.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("Leases in the app's namespace: %v (err %v), want none", l, err)
	}
	if err := e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
	gone := renewed()
	eventually(t, time.Minute, "the Lease renewed after the namespace went", func(context.Context) (bool, error) {
		return renewed().After(gone.Time), nil
	})
	if err := held.Err(); err != nil {
		t.Errorf("the lock was lost: %v", err)
	}
}

// copyWithout copies an app directory without the entries named, as a fresh clone or a CI
// checkout holds it.
func copyWithout(t *testing.T, appDir string, without ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "app")
	if err := os.CopyFS(dst, os.DirFS(appDir)); err != nil {
		t.Fatal(err)
	}
	for _, w := range without {
		if err := os.RemoveAll(filepath.Join(dst, w)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestFreshCloneNeedsAddCluster: the app directory without .kfdeploy/ (a fresh clone, a CI
// runner) refuses apply, diff and delete on a cluster that already holds the app's inventory,
// naming the context, server and kube-system UID and changing nothing; --add-cluster records
// the cluster and goes ahead.
func TestFreshCloneNeedsAddCluster(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--timeout", "2m")
	kubeSystem, err := e.kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	server := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].Server
	inventory := func() string {
		parent, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "kfdeploy-app", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the app's inventory: %v", err)
		}
		return parent.ResourceVersion
	}
	before := inventory()

	clone := copyWithout(t, appDir, clusterid.StateDir)
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"apply", "--timeout", "1m"}, 1}, {[]string{"diff"}, 2}, {[]string{"delete", "--yes"}, 1}} {
		r := e.run(t, clone, tc.args...)
		if r.code != tc.code {
			t.Errorf("%s from a fresh clone: exit %d, want %d (refused)\n%s%s", tc.args[0], r.code, tc.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"refusing to " + tc.args[0], `context "` + cfg.CurrentContext + `"`, server,
			short(string(kubeSystem.UID)), "already holds this app", "--add-cluster"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s from a fresh clone: the refusal does not name %q:\n%s", tc.args[0], want, r.stderr)
			}
		}
		if _, err := os.Stat(clusterid.StatePath(clone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s refused, yet recorded a cluster (%v)", tc.args[0], err)
		}
	}
	if after := inventory(); after != before {
		t.Errorf("refused runs changed the inventory (resourceVersion %s → %s)", before, after)
	}

	e.mustRun(t, clone, "apply", "--add-cluster", "--timeout", "2m")
	state, err := clusterid.Load(clone)
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := state.Lookup(cfg.CurrentContext); !ok || rec.UID != string(kubeSystem.UID) {
		t.Errorf("after apply --add-cluster the clone records %+v, want context %s with UID %s", state.Clusters, cfg.CurrentContext, kubeSystem.UID)
	}
	e.mustRun(t, clone, "delete", "--yes")
}

// TestClusterGuardCoversPreflightTestStatus: an app that knows cluster A, run through a context
// reaching cluster B, creates no NFS PersistentVolume with preflight --nfs-server, and test and
// status refuse; each says why and names B, and B holds nothing of kfdeploy afterwards.
func TestClusterGuardCoversPreflightTestStatus(t *testing.T) {
	e := newEnv(t)
	tc := newTwoClusters(t, e)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "1Gi", "gpus": 0})
	e.mustRun(t, appDir, "generate")
	both := tc.kubeconfig(t, [2]string{"prod", "a"}, [2]string{"staging", "b"})
	// The app knows A, through context prod.
	state := mustLoadState(t, appDir)
	state.Record(clusterid.Identity{Context: "prod", Server: tc.serverA, UID: tc.uidA}, time.Now())
	if err := state.Save(appDir); err != nil {
		t.Fatal(err)
	}
	pvs := func() int {
		l, err := tc.kubeB.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: inventory.LabelApp})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	pvsBefore := pvs()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"preflight", "--nfs-server", "127.0.0.1", "--nfs-path", "/nfs-data"}, "refusing to create NFS PersistentVolumes"},
		{[]string{"test", "--timeout", "1m"}, "refusing to test"},
		{[]string{"status"}, "refusing to show status"},
	} {
		r := e.run(t, appDir, append(c.args, "--kubeconfig", both, "--context", "staging")...)
		if r.code != 1 {
			t.Errorf("%s through staging: exit %d, want 1\nstdout: %s\nstderr: %s", c.args[0], r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{c.want, `not context "staging"`, tc.serverB, short(tc.uidB)} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s through staging: the refusal does not name %q:\n%s", c.args[0], want, r.stderr)
			}
		}
		tc.assertNothingOnB(t, ns, c.args[0]+" through staging")
	}
	if n := pvs(); n != pvsBefore {
		t.Errorf("preflight --nfs-server through staging created %d PersistentVolumes on B", n-pvsBefore)
	}
}

func mustLoadState(t *testing.T, appDir string) *clusterid.State {
	t.Helper()
	s, err := clusterid.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
