package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// lockDuration is how long a lock outlives a holder that stopped renewing it (killed, or lost
// its connection); a live holder renews it every lockDuration/3.
const lockDuration = 60 * time.Second

// Lock is a Lease in the app's namespace held for the length of an apply or delete, so that two
// runs against the same app never interleave.
type Lock struct {
	c         *Client
	namespace string
	name      string
	holder    string
	stop      context.CancelFunc
	done      chan struct{}
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

// AcquireLock takes the app's lock or returns *ErrLocked naming the holder. An expired lock
// (its holder stopped renewing) is taken over.
func (c *Client) AcquireLock(ctx context.Context, s ApplySet) (*Lock, error) {
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	l := &Lock{c: c, namespace: s.Namespace, name: s.ParentName() + "-lock",
		holder: fmt.Sprintf("%s/pid-%d/%s", host, os.Getpid(), hex.EncodeToString(suffix))}
	leases := c.Typed.CoordinationV1().Leases(s.Namespace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       &l.holder,
		LeaseDurationSeconds: ptr.To(int32(lockDuration / time.Second)),
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Labels: map[string]string{LabelApp: s.App}}, Spec: spec}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := leases.Get(ctx, l.name, metav1.GetOptions{})
		if getErr != nil {
			return nil, fmt.Errorf("read lock %s/%s: %w", s.Namespace, l.name, getErr)
		}
		if held, lockErr := heldByOther(existing, s.App); held {
			return nil, lockErr
		}
		existing.Spec = spec
		_, err = leases.Update(ctx, existing, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			return nil, &ErrLocked{App: s.App, Holder: "a run that took the expired lock just now", Since: now.Time, Expires: now.Add(lockDuration)}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("take lock %s/%s: %w", s.Namespace, l.name, err)
	}
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = stop, make(chan struct{})
	go l.renew(renewCtx)
	return l, nil
}

func heldByOther(lease *coordinationv1.Lease, app string) (bool, error) {
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == "" || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return false, nil
	}
	expires := spec.RenewTime.Add(time.Duration(*spec.LeaseDurationSeconds) * time.Second)
	if time.Now().After(expires) {
		return false, nil
	}
	since := spec.RenewTime.Time
	if spec.AcquireTime != nil {
		since = spec.AcquireTime.Time
	}
	return true, &ErrLocked{App: app, Holder: *spec.HolderIdentity, Since: since, Expires: expires}
}

// renew keeps the lease fresh until Release.
func (l *Lock) renew(ctx context.Context) {
	defer close(l.done)
	ticker := time.NewTicker(lockDuration / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
			lease, err := leases.Get(ctx, l.name, metav1.GetOptions{})
			if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.holder {
				continue
			}
			now := metav1.NewMicroTime(time.Now())
			lease.Spec.RenewTime = &now
			_, _ = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
		}
	}
}

// Release stops renewing and deletes the lease if this run still holds it. It uses a fresh
// context so that an interrupted run still frees its lock.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.stop()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := l.c.Typed.CoordinationV1().Leases(l.namespace)
	lease, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != l.holder {
		return
	}
	_ = leases.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
}
