package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// LockTiming paces the app's lock. Duration is how long the Lease outlives a holder that
// stopped renewing it (killed, or cut off from the API server); the holder renews every
// RetryPeriod and stops writing once its renewals have failed for RenewDeadline. RenewDeadline
// is shorter than Duration, so a holder has stopped before anyone else may take over; the
// difference absorbs clock skew between the runs and requests still in flight.
type LockTiming struct {
	Duration      time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// DefaultLockTiming is the timing of every run; tests shorten it.
func DefaultLockTiming() LockTiming {
	return LockTiming{Duration: 60 * time.Second, RenewDeadline: 40 * time.Second, RetryPeriod: 5 * time.Second}
}

func (t LockTiming) orDefault() LockTiming {
	if t.Duration <= 0 || t.RenewDeadline <= 0 || t.RetryPeriod <= 0 || t.RenewDeadline >= t.Duration {
		return DefaultLockTiming()
	}
	return t
}

// Lock is a Lease in the app's namespace held for the length of an apply or delete, so that two
// runs against the same app never interleave.
//
// k8s.io/client-go/tools/leaderelection is not used: its LeaderElector retries acquisition
// until it wins, while a second run must fail at once naming the holder; and it judges a
// lease it has just read as fresh for a full LeaseDuration from when it read it, so a first
// look can never tell an abandoned lease from a live one. The Lease fields and their meaning
// (holderIdentity, renewTime, leaseDurationSeconds) are the same.
type Lock struct {
	c         *Client
	app       string
	namespace string
	name      string
	holder    string
	timing    LockTiming

	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	renewed  time.Time // when the last renewal that succeeded was sent (monotonic)
	lastErr  error     // the last renewal's error, for the lost-lock message
	lostWith error
}

// ErrLocked is returned when another run holds the app's lock.
type ErrLocked struct {
	App, Holder string
	Since       time.Time
	Expires     time.Time
}

func (e *ErrLocked) Error() string {
	return fmt.Sprintf("another kfdeploy run (%s, since %s) is applying or deleting app %s: wait for it to finish; if it died, its lock expires at %s",
		e.Holder, e.Since.Format(time.RFC3339), e.App, e.Expires.Format(time.RFC3339))
}

// LockLostError is the cause of a run's context once it has stopped holding its lock: its
// renewals failed for the renew deadline, or another run holds the Lease.
type LockLostError struct {
	App, Lease string
	Reason     string
}

func (e *LockLostError) Error() string {
	return fmt.Sprintf("lost the lock on app %s (Lease %s): %s; it stopped writing before another run could take the lock over: rerun apply", e.App, e.Lease, e.Reason)
}

// lockKey marks a context whose requests must stop once the lock is lost (see checkLock).
type lockKey struct{}

// AcquireLock takes the app's lock or returns *ErrLocked naming the holder. An expired lock
// (its holder stopped renewing) is taken over. A Lease that names this run is this run's: the
// response to its create (or update) was lost and the retried request found its own write.
func (c *Client) AcquireLock(ctx context.Context, s ApplySet) (*Lock, error) {
	host, _ := os.Hostname()
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	l := &Lock{c: c, app: s.App, namespace: s.Namespace, name: s.ParentName() + "-lock", timing: c.LockTiming.orDefault(),
		holder: fmt.Sprintf("%s/%s/pid-%d/%s", s.App, host, os.Getpid(), hex.EncodeToString(suffix))}
	sent := time.Now()
	if err := l.take(ctx, sent); err != nil {
		return nil, err
	}
	l.renewed = sent
	lockCtx, cancel := context.WithCancelCause(ctx)
	l.ctx, l.cancel = context.WithValue(lockCtx, lockKey{}, l), cancel
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = stop, make(chan struct{})
	go l.renew(renewCtx)
	return l, nil
}

func (l *Lock) take(ctx context.Context, now time.Time) error {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	at := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       &l.holder,
		LeaseDurationSeconds: ptr.To(int32(l.timing.Duration / time.Second)),
		AcquireTime:          &at,
		RenewTime:            &at,
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: map[string]string{LabelApp: l.app}}, Spec: spec}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("take lock %s/%s: %w", l.namespace, l.name, err)
		}
		return nil
	}
	existing, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read lock %s/%s: %w", l.namespace, l.name, err)
	}
	if l.ours(existing) {
		return nil
	}
	if held, lockErr := heldByOther(existing, l.app, now); held {
		return lockErr
	}
	existing.Spec = spec
	_, err = leases.Update(ctx, existing, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsConflict(err) {
		// Someone wrote the Lease since it was read: another run, or this one (a lost response).
		again, getErr := leases.Get(ctx, l.name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("read lock %s/%s: %w", l.namespace, l.name, getErr)
		}
		if l.ours(again) {
			return nil
		}
		if held, lockErr := heldByOther(again, l.app, now); held {
			return lockErr
		}
	}
	if err != nil {
		return fmt.Errorf("take expired lock %s/%s: %w", l.namespace, l.name, err)
	}
	return nil
}

func (l *Lock) ours(lease *coordinationv1.Lease) bool {
	return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == l.holder
}

func heldByOther(lease *coordinationv1.Lease, app string, now time.Time) (bool, error) {
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == "" || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return false, nil
	}
	expires := spec.RenewTime.Add(time.Duration(*spec.LeaseDurationSeconds) * time.Second)
	if now.After(expires) {
		return false, nil
	}
	since := spec.RenewTime.Time
	if spec.AcquireTime != nil {
		since = spec.AcquireTime.Time
	}
	return true, &ErrLocked{App: app, Holder: *spec.HolderIdentity, Since: since, Expires: expires}
}

// Context is the context that every write of the locked run derives from: cancelled, with a
// *LockLostError as its cause, once the lock is lost. Requests under it are also refused by
// the retry transport as soon as the renew deadline has passed, even before the renewal loop
// has noticed (a process paused past its deadline sends nothing when it resumes).
func (l *Lock) Context() context.Context { return l.ctx }

// Explain turns an error of the locked run into the lost-lock error when the lock was lost:
// whatever failed then failed because the run stopped writing.
func (l *Lock) Explain(err error) error {
	if err == nil {
		return nil
	}
	lost := l.check()
	if lost == nil || errors.Is(err, lost) {
		return err
	}
	return fmt.Errorf("%w (%v)", lost, err)
}

// checkLock refuses a request whose context belongs to a run that lost its lock.
func checkLock(ctx context.Context) error {
	if l, ok := ctx.Value(lockKey{}).(*Lock); ok {
		return l.check()
	}
	return nil
}

// check returns the lost-lock error once the renew deadline has passed since the last renewal
// that succeeded, and cancels the run's context.
func (l *Lock) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostWith == nil && time.Since(l.renewed) > l.timing.RenewDeadline {
		reason := fmt.Sprintf("its renewals failed for %s", l.timing.RenewDeadline)
		if l.lastErr != nil {
			reason += " (last: " + l.lastErr.Error() + ")"
		}
		l.loseLocked(reason)
	}
	return l.lostWith
}

func (l *Lock) lose(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostWith == nil {
		l.loseLocked(reason)
	}
}

func (l *Lock) loseLocked(reason string) {
	l.lostWith = &LockLostError{App: l.app, Lease: l.namespace + "/" + l.name, Reason: reason}
	l.cancel(l.lostWith)
}

// renew keeps the Lease fresh until Release, or until the lock is lost.
func (l *Lock) renew(ctx context.Context) {
	defer close(l.done)
	timer := time.NewTimer(l.timing.RetryPeriod)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if l.check() != nil {
			return
		}
		l.mu.Lock()
		deadline := l.renewed.Add(l.timing.RenewDeadline)
		l.mu.Unlock()
		attemptCtx, cancel := context.WithDeadline(ctx, deadline)
		sent := time.Now()
		taken, err := l.renewOnce(attemptCtx)
		cancel()
		switch {
		case taken != "":
			l.lose(taken)
			return
		case err == nil:
			l.mu.Lock()
			l.renewed, l.lastErr = sent, nil
			l.mu.Unlock()
		case ctx.Err() != nil:
			return
		default:
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
		}
		timer.Reset(l.timing.RetryPeriod)
	}
}

// renewOnce moves the Lease's renewTime forward. It returns a reason when the Lease no longer
// names this run, and the error of a renewal that failed.
func (l *Lock) renewOnce(ctx context.Context) (string, error) {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	lease, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return l.recreate(ctx)
	case err != nil:
		return "", err
	case !l.ours(lease):
		holder := "nobody"
		if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			holder = *lease.Spec.HolderIdentity
		}
		return "the Lease is now held by " + holder, nil
	}
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
	return "", err
}

// recreate writes the Lease again after it was deleted: delete removes the app's namespace, the
// Lease's, last. A namespace that is going (or gone) can hold no Lease for any run, so the
// lock stays this run's.
func (l *Lock) recreate(ctx context.Context) (string, error) {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: map[string]string{LabelApp: l.app}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &l.holder, LeaseDurationSeconds: ptr.To(int32(l.timing.Duration / time.Second)),
			AcquireTime: &now, RenewTime: &now}}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return "", nil
	case apierrors.IsAlreadyExists(err):
		return "its Lease was deleted and taken by another run", nil
	}
	return "", err
}

// Release stops renewing and deletes the lease if this run still holds it. It uses a fresh
// context so that an interrupted run still frees its lock. After a loss the run has stopped
// writing, so freeing a Lease that still names it is safe; it is tried only briefly, as the API
// server was probably out of reach (otherwise the Lease simply expires).
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.stop()
	<-l.done
	budget := 10 * time.Second
	if l.check() != nil {
		budget = 2 * time.Second
	}
	l.cancel(context.Canceled)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	lease, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil || !l.ours(lease) {
		return
	}
	_ = leases.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
}
