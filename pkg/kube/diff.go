package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/pmezard/go-difflib/difflib"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"

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

// ObjectDiff is the difference between an object's live state and what apply would make of it.
type ObjectDiff struct {
	ID     string `json:"id"`
	Change Change `json:"change"`
	Note   string `json:"note,omitempty"`
	Diff   string `json:"diff,omitempty"` // unified diff, Secret values redacted
}

// Diff computes, per object, the unified diff between the live object and the result of a
// server-side dry-run apply, plus the members apply would prune. Secret values are redacted.
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
					Diff: unified("", o.GetName(), nil, cleanForDiff(o))}, nil)
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
					before := cleanForDiff(live)
					redactSecretPair(before, nil)
					add(ObjectDiff{ID: id.String(), Change: ChangePrune, Diff: unified(id.String(), "", before, nil)}, nil)
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
	before, after := cleanForDiff(live), cleanForDiff(predicted)
	redactSecretPair(before, after)
	d := ObjectDiff{ID: p.id.String(), Change: ChangeUpdate, Note: note}
	switch {
	case live == nil:
		d.Change = ChangeCreate
		d.Diff = unified("", p.id.String(), nil, after)
	default:
		d.Diff = unified(p.id.String(), p.id.String(), before, after)
		if d.Diff == "" {
			d.Change = ChangeNone
		}
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

// redactSecretPair replaces Secret values on both sides with markers that still show whether
// a value changed, as kubectl diff does.
func redactSecretPair(before, after map[string]any) {
	isSecret := func(m map[string]any) bool { return m != nil && m["kind"] == "Secret" && m["apiVersion"] == "v1" }
	if !isSecret(before) && !isSecret(after) {
		return
	}
	for _, field := range []string{"data", "stringData"} {
		b, _, _ := unstructured.NestedMap(orEmpty(before), field)
		a, _, _ := unstructured.NestedMap(orEmpty(after), field)
		for k, bv := range b {
			av, ok := a[k]
			switch {
			case !ok:
				b[k] = "***"
			case fmt.Sprint(av) == fmt.Sprint(bv):
				b[k], a[k] = "***", "***"
			default:
				b[k], a[k] = "*** (before)", "*** (after)"
			}
		}
		for k := range a {
			if _, ok := b[k]; !ok {
				a[k] = "***"
			}
		}
		if before != nil && b != nil {
			_ = unstructured.SetNestedMap(before, b, field)
		}
		if after != nil && a != nil {
			_ = unstructured.SetNestedMap(after, a, field)
		}
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// unified renders a unified diff of two objects as YAML; "" when they are equal.
func unified(fromName, toName string, before, after map[string]any) string {
	toYAML := func(m map[string]any) []string {
		if m == nil {
			return nil
		}
		data, err := yaml.Marshal(m)
		if err != nil {
			return []string{fmt.Sprintf("<cannot encode: %v>\n", err)}
		}
		return difflib.SplitLines(string(data))
	}
	a, b := toYAML(before), toYAML(after)
	if fromName == "" {
		fromName = "/dev/null"
	} else {
		fromName = "live/" + fromName
	}
	if toName == "" {
		toName = "/dev/null"
	} else {
		toName = "kfdeploy/" + toName
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: a, B: b, FromFile: fromName, ToFile: toName, Context: 3})
	if err != nil {
		return fmt.Sprintf("<cannot diff: %v>\n", err)
	}
	return text
}
