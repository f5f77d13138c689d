package kube

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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
	cs := fake.NewClientset()
	c := &Client{Typed: cs}
	lock, err := c.AcquireLock(context.Background(), ApplySet{App: "app", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	assertSent(t, lock.Context())
	// As if the process had been stopped for longer than the renew deadline.
	lock.mu.Lock()
	lock.renewed = lock.renewed.Add(-2 * lock.timing.RenewDeadline)
	lock.mu.Unlock()
	assertRefused(t, lock.Context())
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
	leases := cs.CoordinationV1().Leases("ns")
	lease, err := leases.Get(context.Background(), s.ParentName()+"-lock", metav1.GetOptions{})
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

// TestLockSurvivesItsNamespaceGoing: delete removes the app's namespace, and the Lease with it,
// last; the run keeps its lock (a Lease there is written again, or cannot be written by anyone).
func TestLockSurvivesItsNamespaceGoing(t *testing.T) {
	cs := fake.NewClientset()
	// The reactor goes in before the renewing goroutine starts (the fake's reactor chain is not
	// safe to change while it is used); it refuses creates once the namespace is terminating.
	var terminating atomic.Bool
	cs.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !terminating.Load() {
			return false, nil, nil
		}
		err := apierrors.NewForbidden(leaseResource.GroupResource(), "kfdeploy-app-lock", errors.New("namespace ns is being terminated"))
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
		return true, nil, err
	})
	c := &Client{Typed: cs, LockTiming: fastLock}
	s := ApplySet{App: "app", Namespace: "ns"}
	lock, err := c.AcquireLock(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	terminating.Store(true)
	leases := cs.CoordinationV1().Leases("ns")
	if err := leases.Delete(context.Background(), s.ParentName()+"-lock", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Several renewals pass, past the renew deadline.
	time.Sleep(3 * fastLock.RenewDeadline)
	if err := lock.check(); err != nil {
		t.Fatalf("the lock was lost when its namespace went: %v", err)
	}
}
