package kube

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

var leaseResource = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// fastLock is a lock timing short enough for tests that wait for a loss.
var fastLock = LockTiming{Duration: 10 * time.Second, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 20 * time.Millisecond}

// TestLockRecognisesItsOwnLease: the response to the Lease create was lost and the retried
// create met AlreadyExists: the Lease names this run, so the lock is this run's.
func TestLockRecognisesItsOwnLease(t *testing.T) {
	cs := fake.NewClientset()
	lost := true
	cs.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !lost {
			return false, nil, nil
		}
		lost = false
		// The first create reached the server; its answer did not reach the client, whose
		// retry is what answers here.
		lease := a.(k8stesting.CreateAction).GetObject()
		if err := cs.Tracker().Create(leaseResource, lease, a.GetNamespace()); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(leaseResource.GroupResource(), "kfdeploy-app-lock")
	})
	c := &Client{Typed: cs}
	s := ApplySet{App: "app", Namespace: "ns"}
	lock, err := c.AcquireLock(context.Background(), s)
	if err != nil {
		t.Fatalf("a run whose create response was lost is locked out of its own lock: %v", err)
	}
	defer lock.Release()
	if !strings.HasPrefix(lock.holder, "app/") {
		t.Errorf("holder %q does not start with the app", lock.holder)
	}
	// Another run is refused, naming this one.
	_, err = c.AcquireLock(context.Background(), s)
	var locked *ErrLocked
	if !errors.As(err, &locked) || locked.Holder != lock.holder {
		t.Fatalf("second run: %v, want ErrLocked naming %s", err, lock.holder)
	}
}

// TestLockIdentityIsPerRun: two runs of the same process on the same host are told apart.
func TestLockIdentityIsPerRun(t *testing.T) {
	cs := fake.NewClientset()
	c := &Client{Typed: cs}
	first, err := c.AcquireLock(context.Background(), ApplySet{App: "a", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	second, err := c.AcquireLock(context.Background(), ApplySet{App: "b", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Release()
	if first.holder == second.holder {
		t.Errorf("two runs share the identity %q", first.holder)
	}
}

// TestLockLostWhenRenewalsFail: renewals that fail past the renew deadline cancel the run's
// context with a lost-lock cause, and the transport then refuses the run's requests.
func TestLockLostWhenRenewalsFail(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("the API server is down")
	})
	c := &Client{Typed: cs, LockTiming: fastLock}
	lock, err := c.AcquireLock(context.Background(), ApplySet{App: "app", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	select {
	case <-lock.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run's context was not cancelled although every renewal failed")
	}
	var lostErr *LockLostError
	if cause := context.Cause(lock.Context()); !errors.As(cause, &lostErr) || !strings.Contains(cause.Error(), "the API server is down") {
		t.Fatalf("cause %v, want a LockLostError naming the renewal's error", cause)
	}
	if err := lock.Explain(errors.New("write inventory: context canceled")); !errors.As(err, &lostErr) {
		t.Errorf("Explain: %v, want the lost-lock error", err)
	}
	assertRefused(t, lock.Context())
}

// TestLockPausedPastDeadlineSendsNothing: a run that resumes after its renew deadline (a
// paused process) sends no request, before its renewal loop has had a chance to run.
func TestLockPausedPastDeadlineSendsNothing(t *testing.T) {
	lock, clock := lockWithFakeClock(t)
	assertSent(t, lock.Context())
	// As if the process had been stopped for longer than the renew deadline.
	clock.advance(2*lock.timing.RenewDeadline, 2*lock.timing.RenewDeadline)
	assertRefused(t, lock.Context())
}

// TestLockSuspendedMachineSendsNothing: the machine slept past the Lease. Its monotonic clock
// stopped meanwhile, so only the wall clock says so; the run sends nothing more.
func TestLockSuspendedMachineSendsNothing(t *testing.T) {
	lock, clock := lockWithFakeClock(t)
	clock.advance(time.Second, time.Second)
	assertSent(t, lock.Context())
	clock.advance(0, 2*lock.timing.Duration)
	assertRefused(t, lock.Context())
	var lostErr *LockLostError
	if err := lock.Explain(errors.New("x")); !errors.As(err, &lostErr) || !strings.Contains(err.Error(), "suspended") {
		t.Errorf("lost-lock error %v, want it to say the machine was suspended", err)
	}
}

// TestLockTakenOver: a Lease that names another holder ends this run's lock at the next renewal.
func TestLockTakenOver(t *testing.T) {
	cs := fake.NewClientset()
	c := &Client{Typed: cs, LockTiming: fastLock}
	s := ApplySet{App: "app", Namespace: "ns"}
	lock, err := c.AcquireLock(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	leases := cs.CoordinationV1().Leases(LockNamespace)
	lease, err := leases.Get(context.Background(), s.LockName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := "someone-else"
	lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: &other}
	if _, err := leases.Update(context.Background(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lock.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run kept its context although the Lease names another holder")
	}
	if cause := context.Cause(lock.Context()); !strings.Contains(cause.Error(), "held by someone-else") {
		t.Errorf("cause %v, want it to name the new holder", cause)
	}
}

func assertRefused(t *testing.T, ctx context.Context) {
	t.Helper()
	next := &flakyTransport{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, "https://api/api/v1/namespaces/ns/configmaps/x", strings.NewReader("{}"))
	_, err := testRetry(next, fastBackoff).RoundTrip(req)
	var lostErr *LockLostError
	if !errors.As(err, &lostErr) || next.calls != 0 {
		t.Errorf("a request after the lock was lost: error %v after %d calls, want the lost-lock error and no call", err, next.calls)
	}
}

func assertSent(t *testing.T, ctx context.Context) {
	t.Helper()
	next := &flakyTransport{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api/version", nil)
	if _, err := testRetry(next, fastBackoff).RoundTrip(req); err != nil || next.calls != 1 {
		t.Errorf("a request under a held lock: error %v after %d calls, want it sent once", err, next.calls)
	}
}

// TestLockLivesOutsideTheAppNamespace: the Lease is in the default namespace, named after the
// app's namespace and name, so that it exists before the app's namespace and outlives it; two
// apps of the same name in two namespaces have two locks.
func TestLockLivesOutsideTheAppNamespace(t *testing.T) {
	cs := fake.NewClientset()
	c := &Client{Typed: cs}
	ctx := context.Background()
	a, err := c.AcquireLock(ctx, ApplySet{App: "app", Namespace: "x1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	lease, err := cs.CoordinationV1().Leases("default").Get(ctx, "kfdeploy-lock.x1.app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Lease is not default/kfdeploy-lock.x1.app: %v", err)
	}
	if lease.Labels[LabelApp] != "app" || lease.Labels[labelLockNamespace] != "x1" {
		t.Errorf("Lease labels %v, want the app and its namespace", lease.Labels)
	}
	if l, _ := cs.CoordinationV1().Leases("x1").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d Leases in the app's namespace, want none", len(l.Items))
	}
	b, err := c.AcquireLock(ctx, ApplySet{App: "app", Namespace: "y1"})
	if err != nil {
		t.Fatalf("app app in y1 is locked out by app app in x1: %v", err)
	}
	b.Release()
}

// TestLockHonoursTheLegacyLease: a live Lease of an earlier release, in the app's namespace,
// refuses the run, naming its holder, and leaves no new Lease behind; an expired one does not.
func TestLockHonoursTheLegacyLease(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	at := metav1.NewMicroTime(clock.Wall())
	holder := "app/old-host/pid-1"
	legacy := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kfdeploy-app-lock"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: ptr.To(int32(60)), AcquireTime: &at, RenewTime: &at}}
	cs := fake.NewClientset(legacy)
	c := &Client{Typed: cs, LockTiming: LockTiming{Clock: clock}}
	s := ApplySet{App: "app", Namespace: "ns"}
	_, err := c.AcquireLock(ctx, s)
	var locked *ErrLocked
	if !errors.As(err, &locked) || locked.Holder != holder || !strings.Contains(err.Error(), "ns/kfdeploy-app-lock") {
		t.Fatalf("with an earlier release's live lock: %v, want ErrLocked naming %s and its Lease", err, holder)
	}
	if _, err := cs.CoordinationV1().Leases(LockNamespace).Get(ctx, s.LockName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused run left its Lease: %v", err)
	}
	clock.advance(2*time.Minute, 2*time.Minute)
	lock, err := c.AcquireLock(ctx, s)
	if err != nil {
		t.Fatalf("with an earlier release's expired lock: %v", err)
	}
	lock.Release()
}

// TestApplyStopsAfterTheWallClockJumps: the machine sleeps past the Lease while a level is
// written (the wall clock jumps, the monotonic one does not). The level in flight finishes; the
// next level is not written, and the run fails saying it lost the lock.
func TestApplyStopsAfterTheWallClockJumps(t *testing.T) {
	clock := newFakeClock()
	cs := fake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{apiServiceResource: "APIServiceList"})
	var mu sync.Mutex
	var written []string
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		mu.Lock()
		written = append(written, p.GetResource().Resource+"/"+p.GetName())
		mu.Unlock()
		if p.GetResource().Resource == "configmaps" {
			clock.advance(0, 2*DefaultLockTiming().Duration) // suspended while it was sent
		}
		out := &unstructured.Unstructured{}
		if err := out.UnmarshalJSON(p.GetPatch()); err != nil {
			return true, nil, err
		}
		return true, out, nil
	})
	c := offlineClient()
	c.Mapper.(resettableMapper).Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	c.Typed, c.Dynamic, c.LockTiming = cs, dyn, LockTiming{Clock: clock}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c.Metadata = metadatafake.NewSimpleMetadataClient(scheme) // apply lists the cluster's inventories
	s := ApplySet{App: "app", Namespace: "ns"}
	lock, err := c.AcquireLock(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	objs := []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "ns", "settings", map[string]any{"data": map[string]any{"a": "b"}}),
		obj("apps/v1", "Deployment", "ns", "web", map[string]any{"spec": map[string]any{}}),
	}
	_, err = c.Apply(lock.Context(), s, objs, ApplyOptions{Concurrency: 1}, discard{})
	var lostErr *LockLostError
	if !errors.As(err, &lostErr) || !strings.Contains(err.Error(), "suspended") {
		t.Fatalf("apply: %v, want the lost-lock error saying the machine was suspended", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(written, []string{"configmaps/settings"}) {
		t.Errorf("written %v, want the ConfigMap alone: nothing after the jump", written)
	}
}

// lockWithFakeClock takes a lock on a fake cluster whose clocks move only when told.
func lockWithFakeClock(t *testing.T) (*Lock, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	c := &Client{Typed: fake.NewClientset(), LockTiming: LockTiming{Clock: clock}}
	lock, err := c.AcquireLock(context.Background(), ApplySet{App: "app", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lock.Release)
	return lock, clock
}

// fakeClock is a LockClock that moves only when told: advance(mono, wall) moves each clock.
type fakeClock struct {
	mu   sync.Mutex
	mono time.Duration
	wall time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{wall: time.Now().Round(0)} }

func (f *fakeClock) Monotonic() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

func (f *fakeClock) Wall() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

func (f *fakeClock) advance(mono, wall time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mono += mono
	f.wall = f.wall.Add(wall)
}
