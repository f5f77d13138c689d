package kube

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
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
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
}

// Diff compares, per object, the live object with the result of a server-side dry-run apply,
// and lists the members apply would prune or keep.
func (c *Client) Diff(ctx context.Context, s ApplySet, objs []*unstructured.Unstructured, prune bool, concurrency int) ([]ObjectDiff, error) {
	if concurrency <= 0 {
		concurrency = 8
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
	crdKinds := crdProvidedKinds(objs)
	g := errgroup.Group{}
	g.SetLimit(concurrency)
	desired := sets.New[manifest.ID]()
	for _, o := range objs {
		o := c.label(s, o)
		if crdKinds.Has(manifest.IDOf(o).GroupKind()) {
			if _, err := c.Mapping(o.GroupVersionKind()); err != nil {
				desired.Insert(manifest.IDOf(o))
				add(ObjectDiff{ID: manifest.IDOf(o).String(), Change: ChangeCreate, Note: "its CustomResourceDefinition is not installed yet: not validated",
					Desired: cleanForDiff(o)}, nil)
				continue
			}
		}
		p, err := c.plan(s, o)
		if err != nil {
			add(ObjectDiff{}, err)
			continue
		}
		desired.Insert(p.id)
		g.Go(func() error {
			add(c.diffOne(ctx, p))
			return nil
		})
	}
	_ = g.Wait()
	if prune {
		inv, err := c.ReadInventory(ctx, s)
		if err != nil {
			return nil, err
		}
		if inv.Exists {
			members, err := c.listMembers(ctx, s, inv.GroupKinds, inv.Namespaces)
			if err != nil {
				return nil, err
			}
			for id, m := range members {
				if desired.Has(id) {
					continue
				}
				if reason := keepReason(m, false); reason != "" {
					add(ObjectDiff{ID: id.String(), Change: ChangeKeep, Note: reason + ", no longer in the app"}, nil)
					continue
				}
				live, err := c.resourceFor(m.mapping, id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					add(ObjectDiff{}, fmt.Errorf("diff %s: %w", id, err))
					continue
				}
				if live != nil {
					add(ObjectDiff{ID: id.String(), Change: ChangePrune, Live: cleanForDiff(live)}, nil)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].ID < diffs[j].ID })
	return diffs, nil
}

func (c *Client) diffOne(ctx context.Context, p planned) (ObjectDiff, error) {
	ri := c.resourceFor(p.mapping, p.obj.GetNamespace())
	live, err := ri.Get(ctx, p.obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return ObjectDiff{}, fmt.Errorf("diff %s: %w", p.id, err)
	}
	predicted, err := ri.Apply(ctx, p.obj.GetName(), p.obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}})
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
