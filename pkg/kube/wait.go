package kube

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// pollInterval paces readiness and deletion polling: one list per kind and namespace a round.
const pollInterval = time.Second

// group is the objects of one resource in one namespace, read together with one list call.
type groupKey struct {
	resource  schema.GroupVersionResource
	namespace string
}

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

// waitEnded turns how a wait ended into its error: the deadline of the run into onDeadline's
// report of what is still pending, a lost lock or an interrupt into themselves, and any error
// met while waiting (Forbidden, a failed list) as it is.
func waitEnded(ctx context.Context, err error, onDeadline func() error) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	var timeout *TimeoutError
	var lost *LockLostError
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

// waitTargets is what the wait still has to read: the plan's objects, less those already known
// to be ready without a read. kstatus judges an object from what it holds (its status, and its
// observedGeneration against its generation), so an object is known ready when
//   - the plan left it unchanged and the snapshot read it whole and Current in this run (the
//     plan's own list, made under the app's lock: nothing of this run wrote it since), or
//   - the API server's response to this run's apply of it is Current already (kinds without a
//     status, such as ConfigMaps and RBAC, are Current as soon as they are written; a written
//     workload is not, its observedGeneration trails).
//
// A metadata-only snapshot (no status) proves nothing: those objects are read by the wait.
func (c *Client) waitTargets(snap *Snapshot, plan *Plan, res *Result) (pending []planned, ready int) {
	steps := append([]Step{}, plan.Namespaces...)
	for _, level := range plan.Levels {
		steps = append(steps, level...)
	}
	for _, st := range steps {
		if st.sharedWith != (AppRef{}) {
			continue // not sent and not a member of this set: its owner waits for it
		}
		if res.appliedReady(st.ID) {
			ready++
			continue
		}
		if st.Change == ChangeNone && st.target.mapping != nil {
			if o := snap.Cached(st.target.mapping.Resource.GroupResource(), st.ID.Namespace, st.ID.Name); o != nil && o.Object != nil && current(o.Object) {
				ready++
				continue
			}
		}
		pending = append(pending, st.target)
	}
	return pending, ready
}

// current reports whether kstatus computes Current for o.
func current(o *unstructured.Unstructured) bool {
	r, err := status.Compute(o)
	return err == nil && r.Status == status.CurrentStatus
}

// noteApplied records an object whose apply response is already Current.
func (r *Result) noteApplied(id manifest.ID, out *unstructured.Unstructured) {
	if !current(out) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readyAtWrite == nil {
		r.readyAtWrite = map[manifest.ID]bool{}
	}
	r.readyAtWrite[id] = true
}

func (r *Result) appliedReady(id manifest.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readyAtWrite[id]
}

// waitReady waits until kstatus (sigs.k8s.io/cli-utils) computes Current for every object:
// Deployments available, StatefulSets rolled out, PVCs Bound, CRDs Established, custom
// resources Ready; ready more objects are known to be ready already. It runs until the run's deadline (see WithRunTimeout), then names each
// object that is not ready and why; timeout is that deadline's length, for the message.
func (c *Client) waitReady(ctx context.Context, s ApplySet, objs []planned, ready int, timeout time.Duration, rep Reporter) error {
	pending := map[groupKey]map[string]manifest.ID{}
	total := ready
	for _, p := range objs {
		k := groupKey{resource: p.mapping.Resource, namespace: p.obj.GetNamespace()}
		if pending[k] == nil {
			pending[k] = map[string]manifest.ID{}
		}
		pending[k][p.obj.GetName()] = p.id
		total++
	}
	if len(pending) == 0 {
		rep.Waiting("ready", total, total, nil)
		return nil
	}
	last := map[manifest.ID]*status.Result{}
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(context.Context) (bool, error) {
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
	return waitEnded(ctx, err, func() error {
		rctx, cancel := reportContext(ctx)
		defer cancel()
		return c.notReadyError(rctx, pending, last, timeout)
	})
}

// crdResource is where CustomResourceDefinitions are read.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until every CRD of a level is Established, all of them together under
// the run's one deadline. A CRD not yet visible is waited for; any other error reading one is
// returned as it is. At the deadline one error names every CRD still pending with the
// condition that holds it (NamesAccepted False on a name conflict, for one).
func (c *Client) waitEstablished(ctx context.Context, level []planned, timeout time.Duration, rep Reporter) error {
	pending := map[string]string{} // name: why it is not Established yet
	for _, p := range level {
		if p.id.Group == "apiextensions.k8s.io" && p.id.Kind == "CustomResourceDefinition" {
			pending[p.id.Name] = "not found yet"
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
				u, err := c.Dynamic.Resource(crdResource).Get(gctx, name, metav1.GetOptions{})
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
	return waitEnded(ctx, err, func() error {
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
func (c *Client) pollReady(ctx context.Context, s ApplySet, pending map[groupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result) error {
	type listed struct {
		key   groupKey
		items []unstructured.Unstructured
	}
	results := make(chan listed, len(pending))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for k := range pending {
		g.Go(func() error {
			items, err := c.listObjects(gctx, k, s.Selector())
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
func (c *Client) notReadyError(ctx context.Context, pending map[groupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result, timeout time.Duration) error {
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
