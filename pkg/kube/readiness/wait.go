// Package readiness is waiting and diagnosis: whether what was applied is ready (kstatus), the
// gates a level waits for (webhooks, APIServices, CRDs), the status of an app's members, and
// why an object is not ready or a namespace stays Terminating.
package readiness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// PollInterval paces readiness and deletion polling: one list per kind and namespace a round.
const PollInterval = time.Second

// Target is one object a wait is about: its ID, the object as sent, and its mapping (nil while
// the CRD of its kind is not installed). The engine makes them from its plan.
type Target struct {
	ID      manifest.ID
	Object  *unstructured.Unstructured
	Mapping *meta.RESTMapping
}

// Progress receives how a wait is going; the engine's Reporter is one.
type Progress interface {
	// Waiting reports readiness: done of total, and the objects still pending.
	Waiting(what string, done, total int, pending []string)
}

// client is the connection the waits read with.
type client struct{ *kube.Client }

// TimeoutError is the cause of a run's context once its --timeout has passed: one deadline
// for the whole apply, shared by every wait in it.
type TimeoutError struct{ Timeout time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the --timeout of %s for the whole run has passed", e.Timeout)
}

// WithRunTimeout is the context of a whole run under --timeout; zero or less means no deadline.
func WithRunTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, &TimeoutError{Timeout: timeout})
}

// Ended turns how a wait ended into its error: the deadline of the run into onDeadline's
// report of what is still pending, a lost lock or an interrupt into themselves, and any error
// met while waiting (Forbidden, a failed list) as it is.
func Ended(ctx context.Context, err error, onDeadline func() error) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	var timeout *TimeoutError
	var lost *lock.LostError
	switch {
	case errors.As(cause, &timeout):
		return onDeadline()
	case errors.As(cause, &lost):
		return lost
	case ctx.Err() != nil:
		return fmt.Errorf("wait interrupted: %w", cause)
	}
	return err
}

// reportContext lets the report of a run that hit its deadline still read pods and events.
func reportContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
}

// Current reports whether kstatus computes Current for o.
func Current(o *unstructured.Unstructured) bool {
	r, err := status.Compute(o)
	return err == nil && r.Status == status.CurrentStatus
}

// Wait waits until kstatus (sigs.k8s.io/cli-utils) computes Current for every object:
// Deployments available, StatefulSets rolled out, PVCs Bound, CRDs Established, custom
// resources Ready; ready more objects are known to be ready already. It runs until the run's deadline (see WithRunTimeout), then names each
// object that is not ready and why; timeout is that deadline's length, for the message.
func Wait(ctx context.Context, kc *kube.Client, s inventory.ApplySet, objs []Target, ready int, timeout time.Duration, rep Progress) error {
	c := client{kc}
	pending := map[kube.GroupKey]map[string]manifest.ID{}
	total := ready
	for _, p := range objs {
		k := kube.GroupKey{Resource: p.Mapping.Resource, Namespace: p.Object.GetNamespace()}
		if pending[k] == nil {
			pending[k] = map[string]manifest.ID{}
		}
		pending[k][p.Object.GetName()] = p.ID
		total++
	}
	if len(pending) == 0 {
		rep.Waiting("ready", total, total, nil)
		return nil
	}
	last := map[manifest.ID]*status.Result{}
	err := wait.PollUntilContextCancel(ctx, PollInterval, true, func(context.Context) (bool, error) {
		if err := c.pollReady(ctx, s, pending, last); err != nil {
			return false, err
		}
		var waiting []string
		for _, names := range pending {
			for _, id := range names {
				waiting = append(waiting, id.String())
			}
		}
		sort.Strings(waiting)
		rep.Waiting("ready", total-len(waiting), total, waiting)
		return len(waiting) == 0, nil
	})
	return Ended(ctx, err, func() error {
		rctx, cancel := reportContext(ctx)
		defer cancel()
		return c.notReadyError(rctx, pending, last, timeout)
	})
}

// WaitEstablished waits until every CRD of a level is Established, all of them together under
// the run's one deadline. A CRD not yet visible is waited for; any other error reading one is
// returned as it is. At the deadline one error names every CRD still pending with the
// condition that holds it (NamesAccepted False on a name conflict, for one).
func WaitEstablished(ctx context.Context, c *kube.Client, level []Target, timeout time.Duration, rep Progress) error {
	pending := map[string]string{} // name: why it is not Established yet
	for _, p := range level {
		if p.ID.Group == "apiextensions.k8s.io" && p.ID.Kind == "CustomResourceDefinition" {
			pending[p.ID.Name] = "not found yet"
		}
	}
	total := len(pending)
	if total == 0 {
		return nil
	}
	var mu sync.Mutex
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		mu.Lock()
		names := slices.Sorted(maps.Keys(pending))
		mu.Unlock()
		for _, name := range names {
			g.Go(func() error {
				u, err := c.Dynamic.Resource(kube.CRDResource).Get(gctx, name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("wait for CustomResourceDefinition %s to be Established: %w", name, err)
				}
				established, why := crdEstablished(u)
				mu.Lock()
				defer mu.Unlock()
				if established {
					delete(pending, name)
				} else {
					pending[name] = why
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return false, err
		}
		mu.Lock()
		defer mu.Unlock()
		waiting := slices.Sorted(maps.Keys(pending))
		rep.Waiting("established", total-len(waiting), total, waiting)
		return len(waiting) == 0, nil
	})
	return Ended(ctx, err, func() error {
		mu.Lock()
		defer mu.Unlock()
		lines := make([]string, 0, len(pending))
		for _, name := range slices.Sorted(maps.Keys(pending)) {
			lines = append(lines, "CustomResourceDefinition "+name+": "+pending[name])
		}
		return fmt.Errorf("%w after %s: %d CustomResourceDefinitions not Established:\n  %s", ErrNotReady, timeout, len(lines), strings.Join(lines, "\n  "))
	})
}

// crdEstablished reads a CRD's Established condition and, when it is not True, the condition
// that explains why (NamesAccepted False names the conflict).
func crdEstablished(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	why := "no Established condition yet"
	for _, raw := range conds {
		cond, _ := raw.(map[string]any)
		typ, _ := cond["type"].(string)
		st, _ := cond["status"].(string)
		reason, _ := cond["reason"].(string)
		msg, _ := cond["message"].(string)
		switch {
		case typ == "Established" && st == "True":
			return true, ""
		case typ == "NamesAccepted" && st == "False":
			return false, fmt.Sprintf("NamesAccepted False: %s: %s", reason, msg)
		case typ == "Established":
			why = fmt.Sprintf("Established %s: %s: %s", st, reason, msg)
		}
	}
	return false, why
}

// pollReady lists each pending group once and drops the objects that are Current.
func (c client) pollReady(ctx context.Context, s inventory.ApplySet, pending map[kube.GroupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result) error {
	type listed struct {
		key   kube.GroupKey
		items []unstructured.Unstructured
	}
	results := make(chan listed, len(pending))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for k := range pending {
		g.Go(func() error {
			items, err := c.ListObjects(gctx, k, s.Selector())
			if err != nil {
				return err
			}
			results <- listed{key: k, items: items}
			return nil
		})
	}
	err := g.Wait()
	close(results)
	if err != nil {
		return fmt.Errorf("wait for readiness: %w", err)
	}
	for l := range results {
		for i := range l.items {
			item := &l.items[i]
			id, ok := pending[l.key][item.GetName()]
			if !ok {
				continue
			}
			r, err := status.Compute(item)
			if err != nil {
				r = &status.Result{Status: status.UnknownStatus, Message: err.Error()}
			}
			last[id] = r
			if r.Status == status.CurrentStatus {
				delete(pending[l.key], item.GetName())
			}
		}
		if len(pending[l.key]) == 0 {
			delete(pending, l.key)
		}
	}
	return nil
}

// notReadyError names every object that is still not ready with its status and, where the
// cause lies in pods or events, the reason from there.
func (c client) notReadyError(ctx context.Context, pending map[kube.GroupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result, timeout time.Duration) error {
	var lines []string
	for k, names := range pending {
		for name, id := range names {
			line := id.String() + ": "
			if r := last[id]; r != nil {
				line += string(r.Status)
				if r.Message != "" {
					line += ": " + r.Message
				}
			} else {
				line += "not found"
			}
			if why := c.explain(ctx, k, name); why != "" {
				line += "; " + why
			}
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return fmt.Errorf("%w after %s: %d of them:\n  %s", ErrNotReady, timeout, len(lines), strings.Join(lines, "\n  "))
}

// ErrNotReady is returned (wrapped) when the run's deadline passes while waiting.
var ErrNotReady = errors.New("objects not ready")
