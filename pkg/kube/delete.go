package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// DeleteOptions tune a delete.
type DeleteOptions struct {
	Purge       bool // also delete PVCs, PVs and generated secrets
	Timeout     time.Duration
	Concurrency int
	DryRun      bool
	// Confirm, when set, is called with what delete is about to do, before anything is
	// written (the lock included); an error stops the delete.
	Confirm func(DeletePlan) error
}

// DeletePlan is what a delete is about to do, for a confirmation prompt.
type DeletePlan struct {
	// Recorded is the cluster the inventory was last applied to (UID "" when not recorded).
	Recorded   clusterid.Identity
	Delete     int // objects to delete, namespaces not counted
	Keep       int // objects kept (PVCs, PVs, keep-on-delete), namespaces not counted
	Namespaces int // namespaces that kfdeploy created, to be deleted last unless they hold kept objects
}

// ErrNotFoundApp means there was no inventory for the app: nothing to delete.
var ErrNotFoundApp = errors.New("no such app in the cluster")

// Delete removes the members of the set found in the cluster (so it works without the app
// directory): custom resources first, then the levels in reverse, each level waited for until
// gone; PVCs, PVs and objects annotated keep-on-delete stay unless Purge. The namespace goes
// last, only if kfdeploy created it and nothing kept lives in it. The inventory stays while it
// lists kept objects, so that a later delete --purge finds them.
func (c *Client) Delete(ctx context.Context, s ApplySet, opts DeleteOptions, rep Reporter) (res *Result, err error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	res = &Result{}
	inv, err := c.ReadInventory(ctx, s)
	if err != nil {
		return res, err
	}
	if !inv.Exists {
		return res, ErrNotFoundApp
	}
	if opts.Confirm != nil {
		// Listed once more under the lock below: the prompt may wait for a long time.
		members, err := c.listMembers(ctx, s, inv.GroupKinds, inv.Namespaces)
		if err != nil {
			return res, err
		}
		if err := opts.Confirm(planDelete(inv, members, opts.Purge)); err != nil {
			return res, err
		}
	}
	// One deadline for everything after the prompt: the levels and the namespaces share it.
	ctx, cancel := WithRunTimeout(ctx, opts.Timeout)
	defer cancel()
	if !opts.DryRun {
		lock, lockErr := c.AcquireLock(ctx, s)
		if lockErr != nil {
			return res, lockErr
		}
		defer lock.Release()
		ctx = lock.Context()
		defer func() { err = lock.Explain(err) }()
	}
	members, err := c.listMembers(ctx, s, inv.GroupKinds, inv.Namespaces)
	if err != nil {
		return res, err
	}
	var doomed, namespaces []member
	kept := map[manifest.ID]member{}
	for _, m := range members {
		switch {
		case m.id.IsNamespace():
			namespaces = append(namespaces, m)
		case keepReason(m, opts.Purge) != "":
			kept[m.id] = m
		default:
			doomed = append(doomed, m)
		}
	}
	for _, id := range sortedIDs(kept) {
		res.add(rep, id, Kept, keepReason(kept[id], false)+"; delete --purge removes it")
	}
	if opts.DryRun {
		for _, m := range sortForDelete(append(doomed, namespaces...)) {
			res.add(rep, m.id, Deleted, "dry run: not sent")
		}
		return res, nil
	}

	var byLevel [manifest.NumLevels][]member
	for _, m := range doomed {
		l := manifest.Level(m.id.GroupKind())
		byLevel[l] = append(byLevel[l], m)
	}
	for l := manifest.NumLevels - 1; l >= 0; l-- {
		if len(byLevel[l]) == 0 {
			continue
		}
		rep.Step("deleting %s (%d objects)", manifest.LevelName(l), len(byLevel[l]))
		if err := c.deleteAndWait(ctx, s, byLevel[l], opts, res, rep); err != nil {
			return res, err
		}
	}

	keptNamespaces := sets.New[string]()
	for id := range kept {
		keptNamespaces.Insert(id.Namespace)
	}
	created := sets.New(inv.CreatedNamespaces...)
	var doomedNS []member
	for _, ns := range namespaces {
		switch {
		case keptNamespaces.Has(ns.id.Name):
			kept[ns.id] = ns
			res.add(rep, ns.id, Kept, "it holds kept objects")
		case !created.Has(ns.id.Name):
			kept[ns.id] = ns
			res.add(rep, ns.id, Kept, "it existed before kfdeploy applied it")
		default:
			doomedNS = append(doomedNS, ns)
		}
	}

	if len(kept) > 0 {
		var kinds []schema.GroupKind
		nss := sets.New(s.Namespace)
		for id := range kept {
			kinds = append(kinds, id.GroupKind())
			if id.Namespace != "" {
				nss.Insert(id.Namespace)
			}
		}
		inv.GroupKinds = unionKinds(kinds, nil)
		inv.Namespaces = sets.List(nss)
		if err := c.WriteInventory(ctx, s, inv); err != nil {
			return res, err
		}
	} else if err := c.DeleteInventory(ctx, s); err != nil {
		return res, err
	}
	if len(doomedNS) > 0 {
		rep.Step("deleting namespaces (%d)", len(doomedNS))
		if err := c.deleteAndWait(ctx, s, doomedNS, opts, res, rep); err != nil {
			return res, err
		}
	}
	return res, nil
}

// planDelete counts what Delete would do with members.
func planDelete(inv Inventory, members map[manifest.ID]member, purge bool) DeletePlan {
	plan := DeletePlan{Recorded: inv.Cluster}
	keptNamespaces := sets.New[string]()
	var namespaces []string
	for _, m := range members {
		switch {
		case m.id.IsNamespace():
			namespaces = append(namespaces, m.id.Name)
		case keepReason(m, purge) != "":
			plan.Keep++
			keptNamespaces.Insert(m.id.Namespace)
		default:
			plan.Delete++
		}
	}
	created := sets.New(inv.CreatedNamespaces...)
	for _, ns := range namespaces {
		if created.Has(ns) && !keptNamespaces.Has(ns) {
			plan.Namespaces++
		}
	}
	return plan
}

// keepReason says why teardown keeps an object, or "" when it may go.
func keepReason(m member, purge bool) string {
	if purge {
		return ""
	}
	switch {
	case m.id.Group == "" && m.id.Kind == "PersistentVolumeClaim":
		return "PersistentVolumeClaim holds data"
	case m.id.Group == "" && m.id.Kind == "PersistentVolume":
		return "PersistentVolume holds data"
	case m.meta.Annotations[AnnotationKeepOnDelete] == "true":
		return "annotated " + AnnotationKeepOnDelete
	}
	return ""
}

// deleteAndWait deletes members concurrently and waits until they are gone, under the run's
// one deadline; at the deadline it names the objects that remain and the finalizers holding them.
func (c *Client) deleteAndWait(ctx context.Context, s ApplySet, members []member, opts DeleteOptions, res *Result, rep Reporter) error {
	if err := checkLock(ctx); err != nil {
		return err
	}
	g := errgroup.Group{}
	g.SetLimit(opts.Concurrency)
	errs := make([]error, len(members))
	for i, m := range members {
		g.Go(func() error {
			errs[i] = c.deleteMember(ctx, m)
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return waitEnded(ctx, err, func() error { return stuckError(members, opts.Timeout) })
		}
		return err
	}
	remaining := members
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(context.Context) (bool, error) {
		// The lists run under the caller's context, not the poll's: a round that has started
		// finishes, and the deadline is judged between rounds.
		live, err := c.liveMembers(ctx, s, remaining)
		if err != nil {
			return false, err
		}
		var still []member
		for _, m := range remaining {
			meta, ok := live[m.id]
			if !ok || (m.meta.UID != "" && meta.UID != m.meta.UID) {
				res.add(rep, m.id, Deleted, "") // gone, or a new object of the same name
				continue
			}
			m.meta = meta
			still = append(still, m)
		}
		remaining = still
		return len(still) == 0, nil
	})
	if err != nil && ctx.Err() == nil {
		return err
	}
	return waitEnded(ctx, err, func() error {
		stuck := stuckError(remaining, opts.Timeout)
		var namespaces []string
		for _, m := range remaining {
			if m.id.IsNamespace() {
				namespaces = append(namespaces, m.id.Name)
			}
		}
		if len(namespaces) == 0 {
			return stuck
		}
		// A namespace stays Terminating for what is left inside it, which kfdeploy may never
		// have applied: say what that is and why it stays. The run's deadline has passed, so
		// these reads get a budget of their own (explainBudget).
		if why := c.explainNamespaces(context.WithoutCancel(ctx), namespaces); why != "" {
			return fmt.Errorf("%w\n%s", stuck, why)
		}
		return stuck
	})
}

// liveMembers reads, with one paginated metadata list per resource and namespace, which of the
// given members still exist.
func (c *Client) liveMembers(ctx context.Context, s ApplySet, members []member) (map[manifest.ID]metav1.ObjectMeta, error) {
	groups := map[groupKey]schema.GroupKind{}
	for _, m := range members {
		groups[groupKey{resource: m.mapping.Resource, namespace: m.id.Namespace}] = m.id.GroupKind()
	}
	live := map[manifest.ID]metav1.ObjectMeta{}
	for k, gk := range groups {
		err := c.eachMetadata(ctx, k.resource, k.namespace, s.Selector(), func(item *metav1.PartialObjectMetadata) {
			live[manifest.ID{Group: gk.Group, Kind: gk.Kind, Namespace: item.Namespace, Name: item.Name}] = item.ObjectMeta
		})
		if err != nil {
			return nil, fmt.Errorf("check %s in %q are gone: %w", kindString(gk), k.namespace, err)
		}
	}
	return live, nil
}

func (c *Client) deleteMember(ctx context.Context, m member) error {
	policy := metav1.DeletePropagationBackground
	pre := metav1.Preconditions{}
	if m.meta.UID != "" {
		pre.UID = &m.meta.UID
	}
	err := c.Metadata.Resource(m.mapping.Resource).Namespace(m.id.Namespace).Delete(ctx, m.id.Name,
		metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &pre})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s: %w", m.id, err)
	}
	return nil
}

func stuckError(stuck []member, timeout time.Duration) error {
	lines := make([]string, 0, len(stuck))
	for _, m := range stuck {
		line := m.id.String()
		if len(m.meta.Finalizers) > 0 {
			line += " (finalizers: " + strings.Join(m.meta.Finalizers, ", ") + ")"
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return fmt.Errorf("%d objects still present after %s; remove the finalizers if their controllers are gone, then rerun delete:\n  %s",
		len(lines), timeout, strings.Join(lines, "\n  "))
}

// sortForDelete orders members for deletion: custom resources first, then levels in reverse.
func sortForDelete(ms []member) []member {
	sort.Slice(ms, func(i, j int) bool {
		li, lj := manifest.Level(ms[i].id.GroupKind()), manifest.Level(ms[j].id.GroupKind())
		if li != lj {
			return li > lj
		}
		return ms[i].id.String() < ms[j].id.String()
	})
	return ms
}

func sortedIDs(m map[manifest.ID]member) []manifest.ID {
	ids := make([]manifest.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}
