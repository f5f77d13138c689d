// Package engine plans and carries out what kfdeploy does to an app: apply (plan, then levels,
// pruning and the wait), delete, diff, the shared-object and keep rules, and the results and
// phases a run reports.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
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
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
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
	// SendAll sends every object, also those the plan finds unchanged (--skip-unchanged=false).
	SendAll bool
	// Snapshot, when set, is what this command read already about the same app and objects
	// (preflight's): the plan is made from it without reading again. Nil: the apply reads for
	// itself.
	Snapshot *Snapshot
}

// client is the connection the engine works with.
type client struct{ *kube.Client }

// planned is one object to apply with its resolved mapping and the hash of its content.
type planned struct {
	obj     *unstructured.Unstructured
	id      manifest.ID
	mapping *meta.RESTMapping // nil until the CRD of its kind is installed in this run
	hash    string
}

// desiredSet is the app's objects ready to plan: labelled, scoped, hashed, split by level.
type desiredSet struct {
	all        []*unstructured.Unstructured
	namespaces []planned
	levels     [manifest.NumLevels][]planned
	crdKinds   sets.Set[schema.GroupKind]
	ids        sets.Set[manifest.ID]
}

// Apply makes the cluster hold objs as the app s. It plans, then executes, under the app's lock
// (the one ctx carries, see lock.Lock.Context, or its own): the namespaces first, then a plan from
// the live inventory (what to create, update, leave unchanged, prune or keep), the ApplySet inventory
// widened before members are written (so an interrupted run is pruned correctly later), the
// levels one after the other (objects of a level concurrently), pruning, and waiting.
// opts.Timeout is one deadline for all of it; every write stops once the app's lock is lost.
func Apply(ctx context.Context, kc *kube.Client, s inventory.ApplySet, objs []*unstructured.Unstructured, opts ApplyOptions, rep Reporter) (res *Result, err error) {
	c := client{kc}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	res = &Result{}
	ctx, cancel := readiness.WithRunTimeout(ctx, opts.Timeout)
	defer cancel()
	snap := opts.Snapshot
	if snap == nil {
		snap = NewSnapshot(kc, s, objs, snapshot.Options{Status: opts.Wait})
	}
	started := time.Now()
	d, err := snap.prepared()
	if err != nil {
		return res, err
	}
	// A server dry run validates every object, so it sends them all.
	sendAll := opts.SendAll || opts.DryRun == DryRunServer
	nsSteps, created, err := snap.planNamespaces(ctx, d, sendAll)
	if err != nil {
		return res, err
	}
	if opts.DryRun == DryRunNone {
		// The caller (pkg/app) normally holds the lock already, taken before preflight; its
		// context carries it.
		held := lock.FromContext(ctx)
		if held == nil {
			if held, err = lock.Acquire(ctx, kc, s); err != nil {
				return res, err
			}
			defer held.Release()
			ctx = held.Context()
		}
		defer func() { err = held.Explain(err) }()
		if err := c.execute(ctx, nsSteps, opts, res, rep); err != nil {
			return res, err
		}
		res.phase("namespaces", started)
	}
	started = time.Now()
	plan, inv, err := snap.planWithInventory(ctx, d, nsSteps, opts.Prune, sendAll)
	if err != nil {
		return res, err
	}
	res.phase("plan", started)
	if opts.DryRun == DryRunClient {
		for _, st := range plan.Steps() {
			res.add(rep, st.ID, plannedAction(st.Change), "dry run: "+st.Reason)
		}
		return res, nil
	}
	if opts.DryRun == DryRunServer {
		if err := c.execute(ctx, plan.Namespaces, opts, res, rep); err != nil {
			return res, err
		}
		if len(created) > 0 {
			c.skipInNewNamespaces(&plan, created, res, rep)
		}
	}

	// Record the union of old and new kinds before writing members: a run interrupted after
	// this point still finds everything it may have written.
	started = time.Now()
	desiredKinds, desiredNSs := kindsAndNamespaces(d.all, s.Namespace)
	union := widened(inv, desiredKinds, desiredNSs, created)
	union.Shared = append(append([]manifest.ID{}, inv.Shared...), plan.Shared...)
	if opts.Cluster.UID != "" {
		union.Cluster = opts.Cluster
	}
	if opts.DryRun == DryRunNone && !inventory.Same(inv, union) {
		if err := inventory.Write(ctx, c.Client, s, union); err != nil {
			return res, err
		}
		res.phase("inventory", started)
	}

	for l := range plan.Levels {
		started = time.Now()
		if err := c.applyPlannedLevel(ctx, s, l, plan.Levels[l], d, opts, res, rep); err != nil {
			return res, err
		}
		if len(plan.Levels[l]) > 0 {
			res.phase("level "+manifest.LevelName(l), started)
		}
	}
	if opts.DryRun == DryRunServer {
		return res, nil
	}

	final := union
	if opts.Prune {
		started = time.Now()
		kept, err := c.prune(ctx, plan.Prune, res, rep)
		if err != nil {
			return res, err
		}
		var keptKinds []schema.GroupKind
		recorded := sets.New(inv.Shared...)
		final.Shared = plan.Shared
		for _, id := range kept {
			keptKinds = append(keptKinds, id.GroupKind())
			if recorded.Has(id) {
				final.Shared = append(final.Shared, id) // still only its record lists it
			}
		}
		final.GroupKinds = inventory.UnionKinds(desiredKinds, keptKinds)
		final.Namespaces = sets.List(sets.New(desiredNSs...).Insert(s.Namespace))
		res.phase("prune", started)
	}
	final.AppliedFields = recordedFields(&plan, res)
	if !inventory.Same(union, final) {
		started = time.Now()
		if err := inventory.Write(ctx, c.Client, s, final); err != nil {
			return res, err
		}
		res.phase("inventory", started)
	}
	if opts.Wait {
		started = time.Now()
		pending, ready := waitTargets(snap, &plan, res)
		if err := readiness.Wait(ctx, c.Client, s, pending, ready, opts.Timeout, rep); err != nil {
			return res, err
		}
		res.phase("wait", started)
	}
	return res, nil
}

// widened is the inventory that lists both what inv recorded and what this run may write.
func widened(inv inventory.Record, kinds []schema.GroupKind, namespaces []string, created sets.Set[string]) inventory.Record {
	union := inv
	union.Exists = true
	union.GroupKinds = inventory.UnionKinds(inv.GroupKinds, kinds)
	union.Namespaces = sets.List(sets.New(inv.Namespaces...).Insert(namespaces...))
	union.CreatedNamespaces = sets.List(sets.New(inv.CreatedNamespaces...).Insert(sets.List(created)...))
	return union
}

// applyPlannedLevel executes one level of the plan. Everything that must hold before a level
// is written, and after it, is called from here.
func (c client) applyPlannedLevel(ctx context.Context, s inventory.ApplySet, l int, steps []Step, d *desiredSet, opts ApplyOptions, res *Result, rep Reporter) error {
	if len(steps) == 0 {
		return nil
	}
	sending := 0
	for _, st := range steps {
		if st.Change != ChangeNone {
			sending++
		}
	}
	rep.Step("applying %s (%d objects, %d to send)", manifest.LevelName(l), len(steps), sending)
	if sending == 0 {
		return c.execute(ctx, steps, opts, res, rep)
	}
	// Before the level: the custom resources whose CRDs were installed earlier in this run.
	if err := c.mapDeferred(s, steps); err != nil {
		if opts.DryRun != DryRunServer {
			return err
		}
		steps = c.skipUnmapped(steps, res, rep)
	}
	var sent []planned
	for _, st := range steps {
		if st.Change != ChangeNone {
			sent = append(sent, st.target)
		}
	}
	// Before the level: the webhooks that admit what it sends have a ready backend, and the
	// APIServices that serve it are Available.
	if opts.DryRun == DryRunNone {
		if err := readiness.WaitGates(ctx, c.Client, waitTargetsOf(sent), opts.Timeout, rep); err != nil {
			return err
		}
	}
	if err := c.execute(ctx, steps, opts, res, rep); err != nil {
		return err
	}
	// After the level: its CRDs Established before anything of their kinds is applied.
	if l == manifest.LevelFoundation && len(d.crdKinds) > 0 && opts.DryRun == DryRunNone {
		if err := readiness.WaitEstablished(ctx, c.Client, waitTargetsOf(sent), opts.Timeout, rep); err != nil {
			return err
		}
		c.Mapper.Reset()
	}
	return nil
}

// planApply computes, without writing, what an apply of objs would do: the plan that
// `apply --dry-run=client` reports and `diff` shows.
func (c client) planApply(ctx context.Context, s inventory.ApplySet, objs []*unstructured.Unstructured, prune, sendAll bool) (*Plan, error) {
	return NewSnapshot(c.Client, s, objs, snapshot.Options{}).Plan(ctx, prune, sendAll)
}

// planPruneLive plans the pruning from what the cluster holds: the stale members, and the stale
// shared objects that no other app lists any more (their owner is gone), each kept while
// another app lists it or, for a CRD, while it holds custom resources.
func (c client) planPruneLive(ctx context.Context, s inventory.ApplySet, inv inventory.Record, existing map[manifest.ID]inventory.Member, desired sets.Set[manifest.ID], parents inventory.Parents) ([]Step, error) {
	var staleShared []manifest.ID
	for _, id := range inv.Shared {
		if !desired.Has(id) {
			staleShared = append(staleShared, id)
		}
	}
	own, _, err := c.sharedMembers(ctx, s, staleShared, parents)
	if err != nil {
		return nil, err
	}
	candidates := make(map[manifest.ID]inventory.Member, len(existing)+len(own))
	maps.Copy(candidates, existing)
	maps.Copy(candidates, own)
	held := map[manifest.ID]string{}
	for id, m := range candidates {
		if desired.Has(id) {
			continue
		}
		if why := sharedReason(parents.Others(s, id, m.Meta)); why != "" {
			held[id] = why
			continue
		}
		if !id.IsCRD() {
			continue
		}
		contents, err := c.crdContents(ctx, s, id.Name)
		if err != nil {
			return nil, err
		}
		if len(contents) > 0 {
			held[id] = fmt.Sprintf("holds %s, which would go with it; delete them first, or remove it and them with 'kubectl delete customresourcedefinition %s'",
				DescribeContents(contents), id.Name)
		}
	}
	return planPrune(candidates, desired, true, held), nil
}

// prepare labels, scopes and hashes the desired objects and splits them by level. Kinds that a
// CRD of this app defines can only be mapped once the CRD is installed; their scope comes from
// the CRD itself.
func (c client) prepare(s inventory.ApplySet, objs []*unstructured.Unstructured) (*desiredSet, error) {
	d := &desiredSet{all: make([]*unstructured.Unstructured, len(objs)), ids: sets.New[manifest.ID]()}
	for i, o := range objs {
		d.all[i] = label(s, o)
	}
	manifest.Sort(d.all)
	levels := manifest.ByLevel(d.all)
	scopes := crdScopes(levels[manifest.LevelFoundation])
	d.crdKinds = sets.KeySet(scopes)
	var every []planned
	var errs []error
	mappings := map[schema.GroupVersionKind]mappingResult{}
	for _, level := range levels {
		for _, o := range level {
			p, err := c.resolve(s, o, scopes, mappings)
			every = append(every, p)
			errs = append(errs, err)
		}
	}
	// Hashing is the bulk of the work for a large app: the objects are hashed concurrently.
	forEachConcurrently(len(every), func(i int) {
		if errs[i] == nil {
			every[i].hash, errs[i] = stampHash(every[i].obj)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, p := range every {
		l := manifest.Level(p.id.GroupKind())
		if p.id.IsNamespace() {
			d.namespaces = append(d.namespaces, p)
		} else {
			d.levels[l] = append(d.levels[l], p)
		}
		d.ids.Insert(p.id)
	}
	if err := duplicates(every); err != nil {
		return nil, err
	}
	return d, nil
}

// forEachConcurrently calls f for 0..n-1, in contiguous runs on GOMAXPROCS goroutines.
func forEachConcurrently(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+minPerWorker-1)/minPerWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

// minPerWorker keeps small apps on one goroutine.
const minPerWorker = 64

// mappingResult is a kind's mapping, looked up once per prepare.
type mappingResult struct {
	m   *meta.RESTMapping
	err error
}

// resolve maps o (when its kind is served) and fills in or clears its namespace by the kind's
// scope; prepare then stamps the hash of what will be sent.
func (c client) resolve(s inventory.ApplySet, o *unstructured.Unstructured, crdScopes map[schema.GroupKind]bool, mappings map[schema.GroupVersionKind]mappingResult) (planned, error) {
	id := manifest.IDOf(o)
	gvk := o.GroupVersionKind()
	r, ok := mappings[gvk]
	if !ok {
		r.m, r.err = c.Mapping(gvk)
		mappings[gvk] = r
	}
	m, err := r.m, r.err
	var namespaced bool
	switch crdNamespaced, fromCRD := crdScopes[id.GroupKind()]; {
	case err == nil:
		namespaced = kube.IsNamespaced(m)
	case fromCRD:
		m, namespaced = nil, crdNamespaced
	default:
		return planned{}, fmt.Errorf("%s: %w", id, err)
	}
	id = id.Scoped(namespaced, s.Namespace)
	o.SetNamespace(id.Namespace)
	return planned{obj: o, id: id, mapping: m}, nil
}

// label returns a copy of o carrying the set's labels.
func label(s inventory.ApplySet, o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[inventory.LabelPartOf] = s.ID()
	labels[inventory.LabelApp] = s.App
	o.SetLabels(labels)
	return o
}

// mapDeferred maps the custom resources whose CRDs were installed earlier in this run.
func (c client) mapDeferred(s inventory.ApplySet, steps []Step) error {
	var errs []error
	for i := range steps {
		t := &steps[i].target
		if t.mapping != nil || steps[i].Change == ChangeNone {
			continue
		}
		m, err := c.Mapping(t.obj.GroupVersionKind())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.id, err))
			continue
		}
		t.mapping = m
	}
	return errors.Join(errs...)
}

// skipUnmapped drops, in a server dry run, the custom resources whose CRDs are not installed.
func (c client) skipUnmapped(steps []Step, res *Result, rep Reporter) []Step {
	remaining := steps[:0]
	for _, st := range steps {
		if st.target.mapping == nil {
			res.add(rep, st.ID, Created, "dry run: its CustomResourceDefinition is not installed yet, not validated")
			continue
		}
		remaining = append(remaining, st)
	}
	return remaining
}

// skipInNewNamespaces drops, in a server dry run, what lives in a namespace that does not
// exist yet (a dry-run namespace is not persisted, so nothing inside it can be dry-run).
func (c client) skipInNewNamespaces(plan *Plan, created sets.Set[string], res *Result, rep Reporter) {
	for l := range plan.Levels {
		remaining := plan.Levels[l][:0]
		for _, st := range plan.Levels[l] {
			if created.Has(st.ID.Namespace) || (st.target.mapping == nil && st.ID.Namespace == "") {
				res.add(rep, st.ID, Created, "dry run: its namespace does not exist yet, not validated")
				continue
			}
			remaining = append(remaining, st)
		}
		plan.Levels[l] = remaining
	}
}

// execute carries out a level's steps: unchanged objects are reported, the others are
// server-side applied with bounded concurrency. Every object is tried; the errors of all
// failures are returned together.
func (c client) execute(ctx context.Context, steps []Step, opts ApplyOptions, res *Result, rep Reporter) error {
	if err := kube.MaySend(ctx); err != nil {
		return err
	}
	var mu sync.Mutex
	var errs []error
	g := errgroup.Group{}
	g.SetLimit(opts.Concurrency)
	for _, st := range steps {
		if st.Change == ChangeNone {
			res.add(rep, st.ID, Unchanged, "")
			continue
		}
		g.Go(func() error {
			action, out, err := c.applyOne(kube.WithWarningObject(ctx, st.ID.String(), rep), st, opts)
			if out != nil && opts.DryRun == DryRunNone {
				res.noteApplied(st.ID, out)
				res.recordFields(st.ID, fieldsFingerprint(st.target.hash, out.GetManagedFields()))
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				res.add(rep, st.ID, Failed, "")
				return nil
			}
			res.add(rep, st.ID, action, "")
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

// applyOne sends one object and returns what happened to it and the object the API server
// returned.
func (c client) applyOne(ctx context.Context, st Step, opts ApplyOptions) (Action, *unstructured.Unstructured, error) {
	p := st.target
	applyOpts := metav1.ApplyOptions{FieldManager: inventory.FieldManager, Force: opts.ForceConflicts}
	if opts.DryRun == DryRunServer {
		applyOpts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := c.ResourceFor(p.mapping, p.obj.GetNamespace()).Apply(ctx, p.obj.GetName(), p.obj, applyOpts)
	if err != nil {
		return Failed, nil, describeApplyError(p.id, err)
	}
	if st.Change == ChangeUpdate {
		if st.liveRV == out.GetResourceVersion() {
			return Unchanged, out, nil
		}
		return Configured, out, nil
	}
	// Not a member before: created, unless another manager already had it (adopted).
	for _, f := range out.GetManagedFields() {
		if f.Manager != inventory.FieldManager {
			return Configured, out, nil
		}
	}
	return Created, out, nil
}

// plannedAction is the action a dry run reports for a planned change.
func plannedAction(ch Change) Action {
	switch ch {
	case ChangeCreate:
		return Created
	case ChangeUpdate:
		return Configured
	case ChangePrune:
		return Pruned
	case ChangeKeep:
		return Kept
	}
	return Unchanged
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

// prune carries out the plan's prune steps and returns the members it keeps, so that the
// inventory goes on listing them.
func (c client) prune(ctx context.Context, steps []Step, res *Result, rep Reporter) ([]manifest.ID, error) {
	if err := kube.MaySend(ctx); err != nil {
		return nil, err
	}
	var kept []manifest.ID
	var errs []error
	for _, st := range steps {
		if st.Change == ChangeKeep {
			kept = append(kept, st.ID)
			res.add(rep, st.ID, Kept, st.Reason)
			continue
		}
		if err := c.deleteMember(ctx, st.member); err != nil {
			errs = append(errs, err)
			continue
		}
		res.add(rep, st.ID, Pruned, "")
	}
	return kept, errors.Join(errs...)
}

// crdScopes maps each kind that a CRD among objs defines to whether it is namespaced.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	scopes := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		scopes[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return scopes
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
	return inventory.UnionKinds(kinds.UnsortedList(), nil), sets.List(nss)
}

// recordedFields is what the inventory records after an apply that carried out plan: per
// desired object, the fingerprint of kfdeploy's fields, from the server's response for those
// sent and from the inventory for those left unchanged. An object whose apply failed or was
// not reached is left out, so the next apply sends it.
func recordedFields(plan *Plan, res *Result) map[string]string {
	res.mu.Lock()
	defer res.mu.Unlock()
	out := map[string]string{}
	for _, st := range plan.Steps() {
		switch {
		case st.Change == ChangeNone && st.fields != "":
			out[st.ID.String()] = st.fields
		case st.Change == ChangeCreate || st.Change == ChangeUpdate:
			if f := res.fields[st.ID]; f != "" {
				out[st.ID.String()] = f
			}
		}
	}
	return out
}
