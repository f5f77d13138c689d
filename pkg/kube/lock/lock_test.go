package lock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

var leaseResource = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// fastLock is a lock timing short enough for tests that wait for a loss.
var fastLock = kube.LockTiming{Duration: 10 * time.Second, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 20 * time.Millisecond}

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
	c := &kube.Client{Typed: cs}
	s := inventory.ApplySet{App: "app", Namespace: "ns"}
	lock, err := Acquire(context.Background(), c, s)
	if err != nil {
		t.Fatalf("a run whose create response was lost is locked out of its own lock: %v", err)
	}
	defer lock.Release()
	if !strings.HasPrefix(lock.holder, "app/") {
		t.Errorf("holder %q does not start with the app", lock.holder)
	}
	// Another run is refused, naming this one.
	_, err = Acquire(context.Background(), c, s)
	var locked *ErrLocked
	if !errors.As(err, &locked) || locked.Holder != lock.holder {
		t.Fatalf("second run: %v, want ErrLocked naming %s", err, lock.holder)
	}
}

// TestLockIdentityIsPerRun: two runs of the same process on the same host are told apart.
func TestLockIdentityIsPerRun(t *testing.T) {
	cs := fake.NewClientset()
	c := &kube.Client{Typed: cs}
	first, err := Acquire(context.Background(), c, inventory.ApplySet{App: "a", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	second, err := Acquire(context.Background(), c, inventory.ApplySet{App: "b", Namespace: "ns"})
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
	c := &kube.Client{Typed: cs, LockTiming: fastLock}
	lock, err := Acquire(context.Background(), c, inventory.ApplySet{App: "app", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	select {
	case <-lock.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run's context was not cancelled although every renewal failed")
	}
	var lostErr *LostError
	if cause := context.Cause(lock.Context()); !errors.As(cause, &lostErr) || !strings.Contains(cause.Error(), "the API server is down") {
		t.Fatalf("cause %v, want a LostError naming the renewal's error", cause)
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
	clock.Advance(2*lock.timing.RenewDeadline, 2*lock.timing.RenewDeadline)
	assertRefused(t, lock.Context())
}

// TestLockSuspendedMachineSendsNothing: the machine slept past the Lease. Its monotonic clock
// stopped meanwhile, so only the wall clock says so; the run sends nothing more.
func TestLockSuspendedMachineSendsNothing(t *testing.T) {
	lock, clock := lockWithFakeClock(t)
	clock.Advance(time.Second, time.Second)
	assertSent(t, lock.Context())
	clock.Advance(0, 2*lock.timing.Duration)
	assertRefused(t, lock.Context())
	var lostErr *LostError
	if err := lock.Explain(errors.New("x")); !errors.As(err, &lostErr) || !strings.Contains(err.Error(), "suspended") {
		t.Errorf("lost-lock error %v, want it to say the machine was suspended", err)
	}
}

// TestLockTakenOver: a Lease that names another holder ends this run's lock at the next renewal.
func TestLockTakenOver(t *testing.T) {
	cs := fake.NewClientset()
	c := &kube.Client{Typed: cs, LockTiming: fastLock}
	s := inventory.ApplySet{App: "app", Namespace: "ns"}
	lock, err := Acquire(context.Background(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	leases := cs.CoordinationV1().Leases(Namespace)
	lease, err := leases.Get(context.Background(), Name(s), metav1.GetOptions{})
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

// assertRefused: the run's context refuses every request (kube.MaySend, which the retry
// transport asks before each attempt) with the lost-lock error.
func assertRefused(t *testing.T, ctx context.Context) {
	t.Helper()
	err := kube.MaySend(ctx)
	var lostErr *LostError
	if !errors.As(err, &lostErr) {
		t.Errorf("a request after the lock was lost: %v, want the lost-lock error", err)
	}
}

func assertSent(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := kube.MaySend(ctx); err != nil {
		t.Errorf("a request under a held lock: %v, want it sent", err)
	}
}

// TestLockLivesOutsideTheAppNamespace: the Lease is in the default namespace, named after the
// app's namespace and name, so that it exists before the app's namespace and outlives it; two
// apps of the same name in two namespaces have two locks.
func TestLockLivesOutsideTheAppNamespace(t *testing.T) {
	cs := fake.NewClientset()
	c := &kube.Client{Typed: cs}
	ctx := context.Background()
	a, err := Acquire(ctx, c, inventory.ApplySet{App: "app", Namespace: "x1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	lease, err := cs.CoordinationV1().Leases("default").Get(ctx, "kfdeploy-lock.x1.app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Lease is not default/kfdeploy-lock.x1.app: %v", err)
	}
	if lease.Labels[inventory.LabelApp] != "app" || lease.Labels[labelLockNamespace] != "x1" {
		t.Errorf("Lease labels %v, want the app and its namespace", lease.Labels)
	}
	if l, _ := cs.CoordinationV1().Leases("x1").List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("%d Leases in the app's namespace, want none", len(l.Items))
	}
	b, err := Acquire(ctx, c, inventory.ApplySet{App: "app", Namespace: "y1"})
	if err != nil {
		t.Fatalf("app app in y1 is locked out by app app in x1: %v", err)
	}
	b.Release()
}

// TestLockHonoursTheLegacyLease: a live Lease of an earlier release, in the app's namespace,
// refuses the run, naming its holder, and leaves no new Lease behind; an expired one does not.
func TestLockHonoursTheLegacyLease(t *testing.T) {
	ctx := context.Background()
	clock := kubetest.NewClock()
	at := metav1.NewMicroTime(clock.Wall())
	holder := "app/old-host/pid-1"
	legacy := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "kfdeploy-app-lock"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: ptr.To(int32(60)), AcquireTime: &at, RenewTime: &at}}
	cs := fake.NewClientset(legacy)
	c := &kube.Client{Typed: cs, LockTiming: kube.LockTiming{Clock: clock}}
	s := inventory.ApplySet{App: "app", Namespace: "ns"}
	_, err := Acquire(ctx, c, s)
	var locked *ErrLocked
	if !errors.As(err, &locked) || locked.Holder != holder || !strings.Contains(err.Error(), "ns/kfdeploy-app-lock") {
		t.Fatalf("with an earlier release's live lock: %v, want ErrLocked naming %s and its Lease", err, holder)
	}
	if _, err := cs.CoordinationV1().Leases(Namespace).Get(ctx, Name(s), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused run left its Lease: %v", err)
	}
	clock.Advance(2*time.Minute, 2*time.Minute)
	lock, err := Acquire(ctx, c, s)
	if err != nil {
		t.Fatalf("with an earlier release's expired lock: %v", err)
	}
	lock.Release()
}

// lockWithFakeClock takes a lock on a fake cluster whose clocks move only when told.
func lockWithFakeClock(t *testing.T) (*Lock, *kubetest.Clock) {
	t.Helper()
	clock := kubetest.NewClock()
	c := &kube.Client{Typed: fake.NewClientset(), LockTiming: kube.LockTiming{Clock: clock}}
	lock, err := Acquire(context.Background(), c, inventory.ApplySet{App: "app", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lock.Release)
	return lock, clock
}
