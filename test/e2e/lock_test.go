//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
)

// wrappedGetter is the kubeconfig of the tests with a transport of the test's under
// kfdeploy's own (its retries sit above it, as above the network).
type wrappedGetter struct {
	*genericclioptions.ConfigFlags
	wrap func(http.RoundTripper) http.RoundTripper
}

func (g wrappedGetter) ToRESTConfig() (*rest.Config, error) {
	cfg, err := g.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(g.wrap)
	return cfg, nil
}

// engineClient is a pkg/kube client of the test cluster, with wrap under its transport.
func (e *env) engineClient(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) *kube.Client {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = ptr.To(e.kubeconfig)
	if wrap == nil {
		wrap = func(rt http.RoundTripper) http.RoundTripper { return rt }
	}
	c, err := kube.NewClient(wrappedGetter{ConfigFlags: flags, wrap: wrap})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLockLostCreateResponse: the response to the Lease create is lost after the API server
// created it; the retried create meets AlreadyExists, and the run recognises the Lease as its
// own instead of locking itself out.
func TestLockLostCreateResponse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("e2e-lock")
	e.cleanupNamespace(t, ns)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, nsObject(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int32
	c := e.engineClient(t, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/leases") && dropped.Add(1) == 1 {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return nil, io.ErrUnexpectedEOF // the Lease was created; its answer is lost
			}
			return resp, err
		})
	})
	s := inventory.ApplySet{App: "app", Namespace: ns}
	held, err := lock.Acquire(ctx, c, s)
	if err != nil {
		t.Fatalf("after a lost create response the run is locked out of its own lock: %v", err)
	}
	if dropped.Load() < 2 {
		t.Fatalf("the create was sent %d times, want the lost one and its retry", dropped.Load())
	}
	other := e.engineClient(t, nil)
	var locked *lock.ErrLocked
	if _, err := lock.Acquire(ctx, other, s); !errors.As(err, &locked) {
		t.Errorf("a second run while the lock is held: %v, want ErrLocked", err)
	}
	held.Release()
	again, err := lock.Acquire(ctx, other, s)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	again.Release()
}

// cutTransport stands for the API server as one run sees it: while cut, every request fails
// with connection refused, as when the API server is stopped.
type cutTransport struct {
	next     http.RoundTripper
	cut      atomic.Bool
	whileCut atomic.Int64 // requests attempted while cut
	after    atomic.Int64 // requests sent after the cut was mended
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		c.whileCut.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	c.after.Add(1)
	return c.next.RoundTrip(r)
}

// stepRecorder is a engine.Reporter that calls onObject for every object reported.
type stepRecorder struct {
	onObject func(id string, action engine.Action)
}

func (r stepRecorder) Object(id string, action engine.Action, _ string) { r.onObject(id, action) }
func (stepRecorder) Step(string, ...any)                                {}
func (stepRecorder) Waiting(string, int, int, []string)                 {}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// TestLockLostStopsWriting: run A loses the API server halfway through its ConfigMaps; once its
// renewals have failed for the renew deadline it stops, with an error saying it lost the lock,
// before its Lease expires; run B can only take over after that, and its apply finds nothing
// half-done: every object applied, nothing failed, and A sends nothing more.
func TestLockLostStopsWriting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("e2e-lock")
	e.cleanupNamespace(t, ns)
	const n = 300
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}
	for i := range n {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%04d", i), "namespace": ns},
			"data":     map[string]any{"index": fmt.Sprint(i)},
		}})
	}
	s := inventory.ApplySet{App: "app", Namespace: ns}
	opts := engine.ApplyOptions{Prune: true, Concurrency: 2, Timeout: 5 * time.Minute}

	cut := &cutTransport{}
	a := e.engineClient(t, func(rt http.RoundTripper) http.RoundTripper { cut.next = rt; return cut })
	a.LockTiming = kube.LockTiming{Duration: 12 * time.Second, RenewDeadline: 6 * time.Second, RetryPeriod: time.Second}
	var applied atomic.Int32
	cutOnce := sync.Once{}
	cutAt := make(chan struct{})
	rep := stepRecorder{onObject: func(id string, _ engine.Action) {
		if strings.Contains(id, "/ConfigMap/") && applied.Add(1) == n/3 {
			cutOnce.Do(func() { cut.cut.Store(true); close(cutAt) })
		}
	}}

	type outcome struct {
		err error
		at  time.Time
	}
	aDone := make(chan outcome, 1)
	go func() {
		_, err := engine.Apply(ctx, a, s, objs, opts, rep)
		aDone <- outcome{err, time.Now()}
	}()
	select {
	case <-cutAt:
	case o := <-aDone:
		t.Fatalf("run A ended before the outage: %v", o.err)
	}

	// Run B tries to take the lock from the moment of the outage.
	b := e.engineClient(t, nil)
	var bAcquired time.Time
	for {
		held, err := lock.Acquire(ctx, b, s)
		var locked *lock.ErrLocked
		if errors.As(err, &locked) {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("run B: %v", err)
		}
		bAcquired = time.Now()
		held.Release()
		break
	}
	var aEnd outcome
	select {
	case aEnd = <-aDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("run A did not stop after losing the API server")
	}
	var lost *lock.LostError
	if !errors.As(aEnd.err, &lost) || !strings.Contains(aEnd.err.Error(), "lost the lock") {
		t.Fatalf("run A: %v, want an error saying it lost the lock", aEnd.err)
	}
	if !aEnd.at.Before(bAcquired) {
		t.Errorf("run A stopped at %s, after run B took the lock at %s", aEnd.at.Format(time.StampMilli), bAcquired.Format(time.StampMilli))
	}
	t.Logf("A lost the API server after %d ConfigMaps, reported %d in all, tried %d requests during the outage and stopped %s before B took over",
		n/3, applied.Load(), cut.whileCut.Load(), bAcquired.Sub(aEnd.at).Round(time.Millisecond))

	// The API server comes back for A: A, stopped, sends nothing.
	sentBefore := cut.after.Load()
	cut.cut.Store(false)
	res, err := engine.Apply(ctx, b, s, objs, opts, stepRecorder{onObject: func(string, engine.Action) {}})
	if err != nil {
		t.Fatalf("run B: %v", err)
	}
	if failed := res.Counts()[engine.Failed]; failed != 0 {
		t.Errorf("run B: %d objects failed", failed)
	}
	if got := cut.after.Load() - sentBefore; got != 0 {
		t.Errorf("run A sent %d requests after it stopped", got)
	}
	cms, err := e.kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/app=app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != n {
		t.Errorf("%d ConfigMaps after run B, want %d", len(cms.Items), n)
	}
	if _, err := e.kube.CoordinationV1().Leases(lock.Namespace).Get(ctx, lock.Name(s), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the lock is still there after run B: %v", err)
	}
}

// TestLockPausedRunStops: a run stopped with SIGSTOP for longer than its renew deadline (40 s)
// but shorter than its Lease (60 s) stops when it resumes, without writing again, and says it
// lost the lock; the next run applies everything.
func TestLockPausedRunStops(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	const n = 800
	writeYAMLComponent(t, appDir, "many", configMaps(ns, n))
	e.mustRun(t, appDir, "generate")
	run := e.start(t, appDir, "apply", "--skip-preflight", "--concurrency", "1")
	run.waitFor(t, "applying configuration", time.Minute)
	if err := run.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		cms, err := e.kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/app=app"})
		if err != nil {
			t.Fatal(err)
		}
		return len(cms.Items)
	}
	time.Sleep(kube.DefaultLockTiming().RenewDeadline + 5*time.Second)
	before := count()
	if before >= n {
		t.Fatal("the run wrote everything before it was paused: the test proves nothing; make the app bigger")
	}
	if err := run.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run.wait(t)
	if code == 0 || !strings.Contains(stderr, "lost the lock on app app") {
		t.Fatalf("the resumed run: exit %d, want a failure saying it lost the lock:\n%s", code, stderr)
	}
	if after := count(); after != before {
		t.Errorf("the resumed run wrote %d more ConfigMaps after its renew deadline had passed", after-before)
	}
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if rep.Counts["failed"] != 0 {
		t.Errorf("the next run: %v", rep.Counts)
	}
	if got := count(); got != n {
		t.Errorf("%d ConfigMaps after the next run, want %d", got, n)
	}
}
