package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// DryRun selects how much of an apply reaches the cluster.
type DryRun string

const (
	DryRunNone   DryRun = ""
	DryRunClient DryRun = "client" // nothing is sent; report what would be applied
	DryRunServer DryRun = "server" // the server validates and computes, nothing persists
)

// ApplyOptions tune an apply.
type ApplyOptions struct {
	DryRun         DryRun
	ForceConflicts bool
	Prune          bool
	Concurrency    int
	Wait           bool
	Timeout        time.Duration
	// Cluster, when its UID is set, is recorded in the inventory as the cluster applied to.
	Cluster clusterid.Identity
}

// planned is one object to apply with its resolved mapping.
type planned struct {
	obj     *unstructured.Unstructured
	id      manifest.ID
	mapping *meta.RESTMapping
}

// Apply makes the cluster hold objs as the app s: server-side apply level by level (objects of
// a level concurrently), CRDs Established before their custom resources, the ApplySet inventory
// updated before members are written (so an interrupted run is pruned correctly later), then
// pruning of members that are no longer wanted, then waiting for readiness. opts.Timeout is one
// deadline for all of it; every write stops once the app's lock is lost.
func (c *Client) Apply(ctx context.Context, s ApplySet, objs []*unstructured.Unstructured, opts ApplyOptions, rep Reporter) (res *Result, err error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	res = &Result{}
	ctx, cancel := WithRunTimeout(ctx, opts.Timeout)
	defer cancel()
	desired := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		desired[i] = c.label(s, o)
	}
	manifest.Sort(desired)
	levels := manifest.ByLevel(desired)

	// Kinds that a CRD of this app defines can only be mapped once the CRD is installed.
	crdKinds := crdProvidedKinds(levels[manifest.LevelFoundation])
	plans := make([][]planned, manifest.NumLevels)
	var mapErrs []error
	for l, level := range levels {
		for _, o := range level {
			id := manifest.IDOf(o)
			if crdKinds.Has(id.GroupKind()) {
				plans[l] = append(plans[l], planned{obj: o, id: id})
				continue
			}
			p, err := c.plan(s, o)
			if err != nil {
				mapErrs = append(mapErrs, err)
				continue
			}
			plans[l] = append(plans[l], p)
		}
	}
	if err := errors.Join(mapErrs...); err != nil {
		return res, err
	}
	if opts.DryRun == DryRunClient {
		for _, level := range plans {
			for _, p := range level {
				res.add(rep, p.id, Configured, "dry run: not sent")
			}
		}
		return res, nil
	}

	// Namespaces first: the lock, the inventory and most members live in them.
	var namespaces, rest []planned
	for _, p := range plans[manifest.LevelFoundation] {
		if p.id.IsNamespace() {
			namespaces = append(namespaces, p)
		} else {
			rest = append(rest, p)
		}
	}
	plans[manifest.LevelFoundation] = rest
	nsBefore, created, err := c.namespacesBefore(ctx, namespaces)
	if err != nil {
		return res, err
	}
	if opts.DryRun == DryRunNone {
		// Applying a namespace twice is harmless, so two runs may both get this far.
		if err := c.applyLevel(ctx, namespaces, nsBefore, opts, res, rep); err != nil {
			return res, err
		}
		lock, lockErr := c.AcquireLock(ctx, s)
		if lockErr != nil {
			return res, lockErr
		}
		defer lock.Release()
		ctx = lock.Context()
		defer func() { err = lock.Explain(err) }()
	}
	inv, err := c.ReadInventory(ctx, s)
	if err != nil {
		return res, err
	}
	desiredKinds, desiredNSs := kindsAndNamespaces(desired, s.Namespace)
	existing := map[manifest.ID]member{}
	if inv.Exists {
		existing, err = c.listMembers(ctx, s, inv.GroupKinds, inv.Namespaces)
		if err != nil {
			return res, err
		}
	}
	if opts.DryRun == DryRunServer {
		if err := c.applyLevel(ctx, namespaces, nsBefore, opts, res, rep); err != nil {
			return res, err
		}
	}
	if opts.DryRun == DryRunServer && len(created) > 0 {
		// A dry-run namespace is not persisted, so nothing inside it can be dry-run.
		for l := range plans {
			remaining := plans[l][:0]
			for _, p := range plans[l] {
				if created.Has(p.obj.GetNamespace()) || (p.mapping == nil && p.obj.GetNamespace() == "") {
					res.add(rep, p.id, Created, "dry run: its namespace does not exist yet, not validated")
					continue
				}
				remaining = append(remaining, p)
			}
			plans[l] = remaining
		}
	}

	// Record the union of old and new kinds before writing members: a run interrupted after
	// this point still finds everything it may have written.
	union := inv
	union.GroupKinds = unionKinds(inv.GroupKinds, desiredKinds)
	union.Namespaces = sets.List(sets.New(inv.Namespaces...).Insert(desiredNSs...))
	union.CreatedNamespaces = sets.List(sets.New(inv.CreatedNamespaces...).Insert(sets.List(created)...))
	if opts.Cluster.UID != "" {
		union.Cluster = opts.Cluster
	}
	if opts.DryRun == DryRunNone {
		if err := c.WriteInventory(ctx, s, union); err != nil {
			return res, err
		}
	}

	for l := range plans {
		if len(plans[l]) == 0 {
			continue
		}
		rep.Step("applying %s (%d objects)", manifest.LevelName(l), len(plans[l]))
		if err := c.mapDeferred(s, plans[l]); err != nil {
			if opts.DryRun != DryRunServer {
				return res, err
			}
			plans[l] = c.skipUnmapped(plans[l], res, rep)
		}
		if err := c.waitGates(ctx, plans[l], opts, rep); err != nil {
			return res, err
		}
		if err := c.applyLevel(ctx, plans[l], existing, opts, res, rep); err != nil {
			return res, err
		}
		if l == manifest.LevelFoundation && len(crdKinds) > 0 && opts.DryRun == DryRunNone {
			if err := c.waitEstablished(ctx, plans[l], opts.Timeout, rep); err != nil {
				return res, err
			}
			c.Mapper.Reset()
		}
	}
	if opts.DryRun == DryRunServer {
		return res, nil
	}

	final := union
	if opts.Prune {
		keptKinds, err := c.prune(ctx, existing, desired, res, rep)
		if err != nil {
			return res, err
		}
		final.GroupKinds = unionKinds(desiredKinds, keptKinds)
		final.Namespaces = sets.List(sets.New(desiredNSs...).Insert(s.Namespace))
	}
	if err := c.WriteInventory(ctx, s, final); err != nil {
		return res, err
	}
	if opts.Wait {
		all := make([]planned, 0, len(desired))
		for _, level := range plans {
			all = append(all, level...)
		}
		all = append(all, namespaces...)
		if err := c.waitReady(ctx, s, all, opts.Timeout, rep); err != nil {
			return res, err
		}
	}
	return res, nil
}

// label returns a copy of o carrying the set's labels.
func (c *Client) label(s ApplySet, o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelPartOf] = s.ID()
	labels[LabelApp] = s.App
	o.SetLabels(labels)
	return o
}

// plan resolves the mapping of o and fills in or clears its namespace by the kind's scope.
func (c *Client) plan(s ApplySet, o *unstructured.Unstructured) (planned, error) {
	id := manifest.IDOf(o)
	m, err := c.Mapping(o.GroupVersionKind())
	if err != nil {
		return planned{}, fmt.Errorf("%s: %w", id, err)
	}
	id = id.Scoped(isNamespaced(m), s.Namespace)
	o.SetNamespace(id.Namespace)
	return planned{obj: o, id: id, mapping: m}, nil
}

// mapDeferred maps the custom resources whose CRDs were installed earlier in this run.
func (c *Client) mapDeferred(s ApplySet, level []planned) error {
	var errs []error
	for i := range level {
		if level[i].mapping != nil {
			continue
		}
		p, err := c.plan(s, level[i].obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		level[i] = p
	}
	return errors.Join(errs...)
}

// skipUnmapped drops, in a server dry run, the custom resources whose CRDs are not installed.
func (c *Client) skipUnmapped(level []planned, res *Result, rep Reporter) []planned {
	remaining := level[:0]
	for _, p := range level {
		if p.mapping == nil {
			res.add(rep, p.id, Created, "dry run: its CustomResourceDefinition is not installed yet, not validated")
			continue
		}
		remaining = append(remaining, p)
	}
	return remaining
}

// applyLevel server-side applies a level's objects with bounded concurrency. Every object is
// tried; the errors of all failures are returned together.
func (c *Client) applyLevel(ctx context.Context, level []planned, existing map[manifest.ID]member, opts ApplyOptions, res *Result, rep Reporter) error {
	var mu sync.Mutex
	var errs []error
	g := errgroup.Group{}
	g.SetLimit(opts.Concurrency)
	for _, p := range level {
		g.Go(func() error {
			action, err := c.applyOne(withWarningObject(ctx, p.id.String(), rep), p, existing, opts)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				res.add(rep, p.id, Failed, "")
				return nil
			}
			res.add(rep, p.id, action, "")
			return nil
		})
	}
	_ = g.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("apply interrupted: %w", context.Cause(ctx))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func (c *Client) applyOne(ctx context.Context, p planned, existing map[manifest.ID]member, opts ApplyOptions) (Action, error) {
	applyOpts := metav1.ApplyOptions{FieldManager: FieldManager, Force: opts.ForceConflicts}
	if opts.DryRun == DryRunServer {
		applyOpts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := c.resourceFor(p.mapping, p.obj.GetNamespace()).Apply(ctx, p.obj.GetName(), p.obj, applyOpts)
	if err != nil {
		return Failed, describeApplyError(p.id, err)
	}
	if prev, ok := existing[p.id]; ok {
		if prev.meta.ResourceVersion == out.GetResourceVersion() {
			return Unchanged, nil
		}
		return Configured, nil
	}
	// Not a member before: created, unless another manager already had it (adopted).
	for _, f := range out.GetManagedFields() {
		if f.Manager != FieldManager {
			return Configured, nil
		}
	}
	return Created, nil
}

// describeApplyError names the object and, for conflicts, each field and its manager.
func describeApplyError(id manifest.ID, err error) error {
	var status apierrors.APIStatus
	if apierrors.IsConflict(err) && errors.As(err, &status) && status.Status().Details != nil {
		var fields []string
		for _, cause := range status.Status().Details.Causes {
			if cause.Type == metav1.CauseTypeFieldManagerConflict {
				fields = append(fields, fmt.Sprintf("%s (%s)", cause.Field, strings.TrimPrefix(cause.Message, "conflict with ")))
			}
		}
		if len(fields) > 0 {
			return fmt.Errorf("apply %s: conflict: fields owned by another manager: %s; rerun with --force-conflicts to take them over",
				id, strings.Join(fields, ", "))
		}
	}
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return fmt.Errorf("apply %s: rejected by the API server: %w", id, err)
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("apply %s: forbidden: %w (run 'kfdeploy preflight' to list missing permissions)", id, err)
	}
	return fmt.Errorf("apply %s: %w", id, err)
}

// namespacesBefore reads the app's namespaces before they are applied: the live ones (to tell
// unchanged from configured) and the names of those that do not exist yet.
func (c *Client) namespacesBefore(ctx context.Context, plans []planned) (map[manifest.ID]member, sets.Set[string], error) {
	live := map[manifest.ID]member{}
	missing := sets.New[string]()
	for _, p := range plans {
		ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, p.id.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			missing.Insert(p.id.Name)
		case err != nil:
			return nil, nil, fmt.Errorf("get namespace %s: %w", p.id.Name, err)
		default:
			live[p.id] = member{id: p.id, mapping: p.mapping, meta: ns.ObjectMeta}
		}
	}
	return live, missing, nil
}

// prune deletes members that are no longer wanted, except those teardown keeps, whose kinds it
// returns so that the inventory goes on listing them.
func (c *Client) prune(ctx context.Context, existing map[manifest.ID]member, desired []*unstructured.Unstructured, res *Result, rep Reporter) ([]schema.GroupKind, error) {
	want := sets.New[manifest.ID]()
	for _, o := range desired {
		want.Insert(manifest.IDOf(o))
	}
	var stale []member
	for id, m := range existing {
		if !want.Has(id) {
			stale = append(stale, m)
		}
	}
	var keptKinds []schema.GroupKind
	var errs []error
	for _, m := range sortForDelete(stale) {
		if reason := keepReason(m, false); reason != "" {
			keptKinds = append(keptKinds, m.id.GroupKind())
			res.add(rep, m.id, Kept, reason+", no longer in the app")
			continue
		}
		if err := c.deleteMember(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		res.add(rep, m.id, Pruned, "")
	}
	return keptKinds, errors.Join(errs...)
}

func crdProvidedKinds(objs []*unstructured.Unstructured) sets.Set[schema.GroupKind] {
	kinds := sets.New[schema.GroupKind]()
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		kinds.Insert(schema.GroupKind{Group: group, Kind: kind})
	}
	return kinds
}

func kindsAndNamespaces(objs []*unstructured.Unstructured, defaultNS string) ([]schema.GroupKind, []string) {
	kinds := sets.New[schema.GroupKind]()
	nss := sets.New(defaultNS)
	for _, o := range objs {
		kinds.Insert(o.GroupVersionKind().GroupKind())
		if ns := o.GetNamespace(); ns != "" {
			nss.Insert(ns)
		}
	}
	return unionKinds(kinds.UnsortedList(), nil), sets.List(nss)
}
