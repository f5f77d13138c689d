// Package lock is the app's lock: a Lease held for the length of a run that writes, so that two
// runs against the same app never interleave, and that stops the run's writes once it is lost.
package lock

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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// withDefaults is t, or the default timing where t is unset or inconsistent, with the
// machine's clocks unless t names others.
func withDefaults(t kube.LockTiming) kube.LockTiming {
	clock := t.Clock
	if t.Duration <= 0 || t.RenewDeadline <= 0 || t.RetryPeriod <= 0 || t.RenewDeadline >= t.Duration {
		t = kube.DefaultLockTiming()
	}
	if clock == nil {
		clock = systemClock{origin: time.Now()}
	}
	t.Clock = clock
	return t
}

// systemClock is the machine's clocks: time.Since reads the monotonic clock.
type systemClock struct{ origin time.Time }

func (c systemClock) Monotonic() time.Duration { return time.Since(c.origin) }
func (systemClock) Wall() time.Time            { return time.Now().Round(0) }

// instant is one reading of both clocks.
type instant struct {
	mono time.Duration
	wall time.Time
}

// Namespace is where every app's Lease lives. The lock must exist before the app's namespace
// (apply creates the namespace under it) and outlive it (delete removes the namespace under it),
// so it cannot live there. "default" exists in every cluster and the API server refuses to
// delete it; an operator who may apply an app (CRDs, ClusterRoles, namespaces) may write Leases
// there, while kube-system is often closed to writes by policy (managed clusters, admission
// policies). The Lease's name carries the app's namespace and name (see Name).
const Namespace = metav1.NamespaceDefault

// Name is the name of the app's Lease in Namespace: kfdeploy-lock.<namespace>.<app>.
// Both are DNS labels (no dots), so two apps never share a name.
func Name(s inventory.ApplySet) string { return "kfdeploy-lock." + s.Namespace + "." + s.App }

// legacyName is the Lease of kfdeploy releases that kept the lock in the app's namespace.
func legacyName(s inventory.ApplySet) string { return s.ParentName() + "-lock" }

// labelLockNamespace names, on the Lease, the namespace of the app it locks.
const labelLockNamespace = "kfdeploy.dev/app-namespace"

// Lock is a Lease (Namespace/Name) held for the length of a run that writes
// (apply, delete, test, preflight creating NFS volumes), so that two runs against the same app
// never interleave.
//
// k8s.io/client-go/tools/leaderelection is not used: its LeaderElector retries acquisition
// until it wins, while a second run must fail at once naming the holder; and it judges a
// lease it has just read as fresh for a full LeaseDuration from when it read it, so a first
// look can never tell an abandoned lease from a live one. The Lease fields and their meaning
// (holderIdentity, renewTime, leaseDurationSeconds) are the same.
type Lock struct {
	c         *kube.Client
	app       string
	namespace string
	name      string
	holder    string
	timing    kube.LockTiming
	clock     kube.LockClock

	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	renewed  instant // when the last renewal that succeeded was sent, by both clocks
	lastErr  error   // the last renewal's error, for the lost-lock message
	lostWith error
}

// ErrLocked is returned when another run holds the app's lock.
type ErrLocked struct {
	App, Holder string
	Lease       string // namespace/name
	Since       time.Time
	Expires     time.Time
}

func (e *ErrLocked) Error() string {
	return fmt.Sprintf("another kfdeploy run (%s, since %s) is applying, deleting or testing app %s (Lease %s): wait for it to finish; if it died, its lock expires at %s",
		e.Holder, e.Since.Format(time.RFC3339), e.App, e.Lease, e.Expires.Format(time.RFC3339))
}

// LostError is the cause of a run's context once it has stopped holding its lock: its
// renewals failed for the renew deadline, or another run holds the Lease.
type LostError struct {
	App, Lease string
	Reason     string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lost the lock on app %s (Lease %s): %s; it stopped writing before another run could take the lock over: rerun apply", e.App, e.Lease, e.Reason)
}

// lockKey marks the context of a locked run (see FromContext).
type lockKey struct{}

// Acquire takes the app's lock or returns *ErrLocked naming the holder. An expired lock
// (its holder stopped renewing) is taken over. A Lease that names this run is this run's: the
// response to its create (or update) was lost and the retried request found its own write.
//
// A live Lease where earlier kfdeploy releases kept it (kfdeploy-<app>-lock in the app's
// namespace) is honoured too: while one of them applies or deletes the app, this run is refused.
// An earlier release does not know the new place, so the reverse is not guarded: do not run two
// releases against one app at once.
func Acquire(ctx context.Context, c *kube.Client, s inventory.ApplySet) (*Lock, error) {
	host, _ := os.Hostname()
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	timing := withDefaults(c.LockTiming)
	l := &Lock{c: c, app: s.App, namespace: Namespace, name: Name(s), timing: timing, clock: timing.Clock,
		holder: fmt.Sprintf("%s/%s/pid-%d/%s", s.App, host, os.Getpid(), hex.EncodeToString(suffix))}
	sent := l.now()
	if err := l.take(ctx, s, sent.wall); err != nil {
		return nil, err
	}
	if err := l.honourLegacy(ctx, s, sent.wall); err != nil {
		l.deleteLease(ctx)
		return nil, err
	}
	l.renewed = sent
	lockCtx, cancel := context.WithCancelCause(ctx)
	// Every request under the run's context asks the lock first (kube.MaySend).
	l.ctx, l.cancel = kube.WithSendGuard(context.WithValue(lockCtx, lockKey{}, l), l.check), cancel
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = stop, make(chan struct{})
	go l.renew(renewCtx)
	return l, nil
}

func (l *Lock) now() instant { return instant{mono: l.clock.Monotonic(), wall: l.clock.Wall()} }

func (l *Lock) take(ctx context.Context, s inventory.ApplySet, now time.Time) error {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	at := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       &l.holder,
		LeaseDurationSeconds: ptr.To(int32(l.timing.Duration / time.Second)),
		AcquireTime:          &at,
		RenewTime:            &at,
	}
	labels := map[string]string{inventory.LabelApp: s.App, labelLockNamespace: s.Namespace}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: labels}, Spec: spec}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: inventory.FieldManager})
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
	existing.Labels = labels
	existing.Spec = spec
	_, err = leases.Update(ctx, existing, metav1.UpdateOptions{FieldManager: inventory.FieldManager})
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

// honourLegacy refuses the lock while a run of an earlier release holds the Lease it kept in
// the app's namespace. A namespace that does not exist holds no Lease; a run that may not read
// Leases there could not be excluded by reading, and goes ahead.
func (l *Lock) honourLegacy(ctx context.Context, s inventory.ApplySet, now time.Time) error {
	lease, err := l.c.Typed.CoordinationV1().Leases(s.Namespace).Get(ctx, legacyName(s), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		return nil
	case err != nil:
		return fmt.Errorf("read the lock of earlier kfdeploy releases %s/%s: %w", s.Namespace, legacyName(s), err)
	}
	if _, lockErr := heldByOther(lease, l.app, now); lockErr != nil {
		return lockErr
	}
	return nil
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
	return true, &ErrLocked{App: app, Holder: *spec.HolderIdentity, Lease: lease.Namespace + "/" + lease.Name, Since: since, Expires: expires}
}

// Context is the context that every write of the locked run derives from: cancelled, with a
// *LostError as its cause, once the lock is lost. Requests under it are also refused by
// the retry transport as soon as the renew deadline has passed, even before the renewal loop
// has noticed (a process paused past its deadline sends nothing when it resumes).
func (l *Lock) Context() context.Context { return l.ctx }

// Err is the lost-lock error once the lock is lost (by either clock), else nil.
func (l *Lock) Err() error { return l.check() }

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

// FromContext is the lock a context was derived from (Lock.Context), or nil.
func FromContext(ctx context.Context) *Lock {
	l, _ := ctx.Value(lockKey{}).(*Lock)
	return l
}

// check returns the lost-lock error once the renew deadline has passed since the last renewal
// that succeeded, by either clock (see kube.LockClock), and cancels the run's context.
func (l *Lock) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostWith != nil {
		return l.lostWith
	}
	now := l.now()
	mono, wall := now.mono-l.renewed.mono, now.wall.Sub(l.renewed.wall)
	switch deadline := l.timing.RenewDeadline; {
	case mono > deadline:
		reason := fmt.Sprintf("its renewals failed for %s", deadline)
		if l.lastErr != nil {
			reason += " (last: " + l.lastErr.Error() + ")"
		}
		l.loseLocked(reason)
	case wall > deadline:
		l.loseLocked(fmt.Sprintf("%s passed on the wall clock since its last renewal, %s of it while this run was running (the machine was suspended, or its clock was set forward), so its Lease may have expired and been taken",
			wall.Round(time.Second), mono.Round(time.Second)))
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
	l.lostWith = &LostError{App: l.app, Lease: l.namespace + "/" + l.name, Reason: reason}
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
		deadline := l.renewed.mono + l.timing.RenewDeadline
		l.mu.Unlock()
		attemptCtx, cancel := context.WithTimeout(ctx, deadline-l.now().mono)
		sent := l.now()
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
	now := metav1.NewMicroTime(l.clock.Wall())
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: inventory.FieldManager})
	return "", err
}

// recreate writes the Lease again after someone deleted it (kubectl delete lease): nobody else
// holds the lock then, unless another run created the Lease first.
func (l *Lock) recreate(ctx context.Context) (string, error) {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	now := metav1.NewMicroTime(l.clock.Wall())
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: map[string]string{inventory.LabelApp: l.app}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &l.holder, LeaseDurationSeconds: ptr.To(int32(l.timing.Duration / time.Second)),
			AcquireTime: &now, RenewTime: &now}}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: inventory.FieldManager})
	if apierrors.IsAlreadyExists(err) {
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
	l.deleteLease(ctx)
}

// deleteLease deletes the Lease if it still names this run.
func (l *Lock) deleteLease(ctx context.Context) {
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	lease, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil || !l.ours(lease) {
		return
	}
	_ = leases.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
}
