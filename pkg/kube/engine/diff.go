package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// Change is what an apply would do to one object.
type Change string

const (
	ChangeNone   Change = "unchanged"
	ChangeCreate Change = "create"
	ChangeUpdate Change = "update"
	ChangePrune  Change = "prune"
	ChangeKeep   Change = "keep" // no longer in the app, but teardown keeps it (PVC, PV, ...)
)

// ObjectDiff is an object's live state beside what apply would make of it, both without the
// fields the server manages (see cleanForDiff). It holds Secret values: whoever shows it must
// redact them (pkg/cli does), so the objects are never encoded as they are.
type ObjectDiff struct {
	ID     string
	Change Change
	Note   string
	// Live is nil for an object apply would create; Desired is nil for one it would prune.
	Live    map[string]any
	Desired map[string]any
	// Planned is what the apply plan does with the object, and Reason why: the plan sends an
	// object whose content or other field managers changed, which the server may still find
	// unchanged (Change).
	Planned Change
	Reason  string
}

// Diff shows the plan of an apply (per object its change and the reason) and, for every object
// the plan would send, compares the live object with the result of a server-side dry-run apply.
// Objects the plan leaves unchanged cost no request beyond the metadata lists of the plan.
func Diff(ctx context.Context, kc *kube.Client, s inventory.ApplySet, objs []*unstructured.Unstructured, prune bool, concurrency int) ([]ObjectDiff, error) {
	c := client{kc}
	if concurrency <= 0 {
		concurrency = 8
	}
	plan, err := c.planApply(ctx, s, objs, prune, false)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		diffs []ObjectDiff
		errs  []error
	)
	add := func(d ObjectDiff, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		diffs = append(diffs, d)
	}
	g := errgroup.Group{}
	g.SetLimit(concurrency)
	for _, st := range plan.Steps() {
		switch {
		case st.Change == ChangeNone:
			add(ObjectDiff{ID: st.ID.String(), Change: ChangeNone, Planned: st.Change, Reason: st.Reason}, nil)
		case st.Change == ChangeKeep:
			add(ObjectDiff{ID: st.ID.String(), Change: ChangeKeep, Note: st.Reason, Planned: st.Change, Reason: st.Reason}, nil)
		case st.Change == ChangePrune:
			g.Go(func() error {
				m := st.member
				live, err := c.ResourceFor(m.Mapping, st.ID.Namespace).Get(ctx, st.ID.Name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					add(ObjectDiff{}, fmt.Errorf("diff %s: %w", st.ID, err))
				default:
					add(ObjectDiff{ID: st.ID.String(), Change: ChangePrune, Live: cleanForDiff(live), Planned: st.Change, Reason: st.Reason}, nil)
				}
				return nil
			})
		case st.target.mapping == nil:
			add(ObjectDiff{ID: st.ID.String(), Change: ChangeCreate, Note: "its CustomResourceDefinition is not installed yet: not validated",
				Desired: cleanForDiff(st.target.obj), Planned: st.Change, Reason: st.Reason}, nil)
		default:
			g.Go(func() error {
				d, err := c.diffOne(ctx, st.target)
				d.Planned, d.Reason = st.Change, st.Reason
				add(d, err)
				return nil
			})
		}
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].ID < diffs[j].ID })
	return diffs, nil
}

func (c client) diffOne(ctx context.Context, p planned) (ObjectDiff, error) {
	ri := c.ResourceFor(p.mapping, p.obj.GetNamespace())
	live, err := ri.Get(ctx, p.obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return ObjectDiff{}, fmt.Errorf("diff %s: %w", p.id, err)
	}
	predicted, err := ri.Apply(ctx, p.obj.GetName(), p.obj, metav1.ApplyOptions{FieldManager: inventory.FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}})
	note := ""
	if err != nil {
		if live != nil || !apierrors.IsNotFound(err) {
			return ObjectDiff{}, describeApplyError(p.id, err)
		}
		// Its namespace does not exist yet, so the server cannot dry-run it.
		predicted, note = p.obj, "its namespace does not exist yet: not validated"
	}
	d := ObjectDiff{ID: p.id.String(), Change: ChangeUpdate, Note: note, Live: cleanForDiff(live), Desired: cleanForDiff(predicted)}
	switch {
	case live == nil:
		d.Change = ChangeCreate
	case equality.Semantic.DeepEqual(d.Live, d.Desired):
		d.Change = ChangeNone
	}
	return d, nil
}

// cleanForDiff drops what the server manages and no user sets: identity, versions, managed
// fields and status.
func cleanForDiff(o *unstructured.Unstructured) map[string]any {
	if o == nil {
		return nil
	}
	c := o.DeepCopy().Object
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c, "metadata", f)
	}
	delete(c, "status")
	return c
}
