package kube

import "context"

// sendGuardKey marks a context whose requests must stop once its guard says so.
type sendGuardKey struct{}

// WithSendGuard is ctx with a guard asked before every request and every batch of writes made
// under it: once the guard returns an error, nothing more is sent. The app's lock installs one
// (pkg/kube/lock), so that a run that lost its lock stops writing; the connection itself knows
// nothing of locks.
func WithSendGuard(ctx context.Context, guard func() error) context.Context {
	return context.WithValue(ctx, sendGuardKey{}, guard)
}

// MaySend refuses a request, or a batch of writes, whose context carries a guard that says the
// run may no longer send: the retry transport asks before every attempt, the engine before
// every level, prune, inventory write and delete batch.
func MaySend(ctx context.Context) error {
	if guard, ok := ctx.Value(sendGuardKey{}).(func() error); ok && guard != nil {
		return guard()
	}
	return nil
}
