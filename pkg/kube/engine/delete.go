package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// DeleteOptions tune a delete.
type DeleteOptions struct {
	// Purge also deletes what holds data: PVCs, PVs, generated secrets, CRDs with their custom
	// resources, and namespaces that hold objects the app did not create.
	Purge       bool
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
	Keep       int // objects kept (PVCs, PVs, CRDs, keep-on-delete, shared), namespaces not counted
	Namespaces int // namespaces that kfdeploy created, to be deleted last unless they hold kept objects
	// Goes lists what the app did not create that goes with the CRDs and namespaces it deletes
	// (with Purge): users' custom resources, claims, jobs.
	Goes []Contents
}

// deleteSurvey is what a delete finds before it writes: what to delete, what to keep and why,
// and what the app did not create that would go with it.
type deleteSurvey struct {
	doomed     []inventory.Member // not namespaces
	namespaces []inventory.Member // namespaces to delete, last
	kept       map[manifest.ID]keptMember
	goes       []Contents
}

// keptMember is an object delete keeps, with why; recorded: the inventory goes on listing it
// (false for objects another app lists: they are that app's to delete).
type keptMember struct {
	m        inventory.Member
	reason   string
	recorded bool
	shared   bool // recorded through the inventory's AnnotationShared, not the part-of label
}

// survey reads the members, the other apps' parents (one list), the shared objects, the
// custom resources of each CRD (one list each) and what each namespace to delete holds (one
// list per resource), and decides what goes and what stays.
func (c client) survey(ctx context.Context, s inventory.ApplySet, inv inventory.Record, purge bool) (*deleteSurvey, error) {
	members, err := inventory.ListMembers(ctx, c.Client, s, inv.GroupKinds, inv.Namespaces)
	if err != nil {
		return nil, err
	}
	parents, err := inventory.ReadParents(ctx, c.Client)
	if err != nil {
		return nil, err
	}
	own, sharedKept, err := c.sharedMembers(ctx, s, inv.Shared, parents)
	if err != nil {
		return nil, err
	}
	return decideDelete(s, inv, members, own, sharedKept, parents, purge, func(id manifest.ID) ([]Contents, error) {
		if id.IsNamespace() {
			return c.namespaceContents(ctx, s, id.Name)
		}
		return c.crdContents(ctx, s, id.Name)
	})
}

// decideDelete is the delete's rule, given the members, the shared objects that are the app's
// own (own) or another app's (sharedKept, with why), the parents of the cluster, and what
// each CRD or namespace to delete holds that the app did not create (contentsOf).
func decideDelete(s inventory.ApplySet, inv inventory.Record, members, own map[manifest.ID]inventory.Member, sharedKept map[manifest.ID]string, parents inventory.Parents, purge bool,
	contentsOf func(manifest.ID) ([]Contents, error)) (*deleteSurvey, error) {
	sv := &deleteSurvey{kept: map[manifest.ID]keptMember{}}
	for id, reason := range sharedKept {
		sv.kept[id] = keptMember{m: inventory.Member{ID: id}, reason: reason}
	}
	var namespaces []inventory.Member
	members = maps.Clone(members)
	maps.Copy(members, own)
	for _, id := range sortedIDs(members) {
		m := members[id]
		_, fromShared := own[id]
		if id.IsNamespace() {
			namespaces = append(namespaces, m)
			continue
		}
		if why := sharedReason(parents.Others(s, id, m.Meta)); why != "" {
			sv.kept[id] = keptMember{m: m, reason: why + "; its delete removes it"}
			continue
		}
		if why := keepReason(m, purge); why != "" {
			sv.kept[id] = keptMember{m: m, reason: why + "; delete --purge removes it", recorded: true, shared: fromShared}
			continue
		}
		if id.IsCRD() {
			contents, err := contentsOf(id)
			if err != nil {
				return nil, err
			}
			if !purge {
				reason := "CustomResourceDefinitions are kept, holding no custom resources now; delete --purge removes it"
				if len(contents) > 0 {
					reason = "holds " + DescribeContents(contents) + "; delete --purge removes it and them"
				}
				sv.kept[id] = keptMember{m: m, reason: reason, recorded: true, shared: fromShared}
				continue
			}
			sv.goes = append(sv.goes, contents...)
		}
		sv.doomed = append(sv.doomed, m)
	}

	keptNamespaces := sets.New[string]()
	recorded := false
	for _, k := range sv.kept {
		keptNamespaces.Insert(k.m.ID.Namespace)
		recorded = recorded || k.recorded
	}
	created := sets.New(inv.CreatedNamespaces...)
	for _, ns := range namespaces {
		name := ns.ID.Name
		switch {
		case keptNamespaces.Has(name):
			sv.kept[ns.ID] = keptMember{m: ns, reason: "it holds kept objects", recorded: true}
			continue
		case !created.Has(name):
			sv.kept[ns.ID] = keptMember{m: ns, reason: "it existed before kfdeploy applied it", recorded: true}
			continue
		}
		contents, err := contentsOf(ns.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case len(contents) > 0 && !purge:
			sv.kept[ns.ID] = keptMember{m: ns, recorded: true,
				reason: "it holds objects the app did not create: " + DescribeContents(contents) + "; delete --purge removes it and them"}
			continue
		case recorded && name == s.Namespace:
			// The inventory lives here and lists what is kept, for a later delete --purge.
			sv.kept[ns.ID] = keptMember{m: ns, reason: "it holds the app's inventory, which lists the kept objects; delete --purge removes it", recorded: true}
			continue
		}
		sv.goes = append(sv.goes, contents...)
		sv.namespaces = append(sv.namespaces, ns)
	}
	sortContents(sv.goes)
	return sv, nil
}

// plan counts what the survey would do, for a confirmation prompt.
func (sv *deleteSurvey) plan(inv inventory.Record) DeletePlan {
	p := DeletePlan{Recorded: inv.Cluster, Delete: len(sv.doomed), Namespaces: len(sv.namespaces), Goes: sv.goes}
	for id := range sv.kept {
		if !id.IsNamespace() {
			p.Keep++
		}
	}
	return p
}

// Delete removes the members of the set found in the cluster (so it works without the app
// directory): custom resources first, then the levels in reverse, each level waited for until
// gone. Kept unless Purge: PVCs, PVs, objects annotated keep-on-delete, CRDs (with what they
// hold), and namespaces holding objects the app did not create; kept always: what another app
// still lists (shared objects). The namespace goes last, only if kfdeploy created it and
// nothing kept lives in it. The inventory stays while it lists kept objects, so that a later
// delete --purge finds them.
func Delete(ctx context.Context, kc *kube.Client, s inventory.ApplySet, opts DeleteOptions, rep Reporter) (res *Result, err error) {
	c := client{kc}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	res = &Result{}
	inv, err := inventory.Read(ctx, c.Client, s)
	if err != nil {
		return res, err
	}
	if !inv.Exists {
		return res, inventory.ErrNotFound
	}
	if opts.Confirm != nil {
		// Surveyed once more under the lock below: the prompt may wait for a long time.
		sv, err := c.survey(ctx, s, inv, opts.Purge)
		if err != nil {
			return res, err
		}
		if err := opts.Confirm(sv.plan(inv)); err != nil {
			return res, err
		}
	}
	// One deadline for everything after the prompt: the levels and the namespaces share it.
	ctx, cancel := readiness.WithRunTimeout(ctx, opts.Timeout)
	defer cancel()
	if !opts.DryRun {
		held, lockErr := lock.Acquire(ctx, kc, s)
		if lockErr != nil {
			return res, lockErr
		}
		defer held.Release()
		ctx = held.Context()
		defer func() { err = held.Explain(err) }()
	}
	sv, err := c.survey(ctx, s, inv, opts.Purge)
	if err != nil {
		return res, err
	}
	res.Goes = sv.goes
	keptIDs := slices.Collect(maps.Keys(sv.kept))
	sort.Slice(keptIDs, func(i, j int) bool { return keptIDs[i].String() < keptIDs[j].String() })
	for _, id := range keptIDs {
		if !id.IsNamespace() {
			res.add(rep, id, Kept, sv.kept[id].reason)
		}
	}
	if opts.DryRun {
		for _, m := range sortForDelete(append(sv.doomed, sv.namespaces...)) {
			res.add(rep, m.ID, Deleted, "dry run: not sent")
		}
		for _, id := range keptIDs {
			if id.IsNamespace() {
				res.add(rep, id, Kept, sv.kept[id].reason)
			}
		}
		return res, nil
	}

	var byLevel [manifest.NumLevels][]inventory.Member
	for _, m := range sv.doomed {
		l := manifest.Level(m.ID.GroupKind())
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
	for _, id := range keptIDs {
		if id.IsNamespace() {
			res.add(rep, id, Kept, sv.kept[id].reason)
		}
	}

	if next, keep := keptInventory(s, inv, sv.kept); keep {
		if err := inventory.Write(ctx, c.Client, s, next); err != nil {
			return res, err
		}
	} else if err := inventory.Delete(ctx, c.Client, s); err != nil {
		return res, err
	}
	if len(sv.namespaces) > 0 {
		rep.Step("deleting namespaces (%d)", len(sv.namespaces))
		if err := c.deleteAndWait(ctx, s, sv.namespaces, opts, res, rep); err != nil {
			return res, err
		}
	}
	return res, nil
}

// keptInventory is the inventory that lists what a delete keeps for a later delete --purge;
// keep is false when nothing recorded is kept (the parent goes).
func keptInventory(s inventory.ApplySet, inv inventory.Record, kept map[manifest.ID]keptMember) (inventory.Record, bool) {
	var kinds []schema.GroupKind
	var shared []manifest.ID
	nss := sets.New(s.Namespace)
	for id, k := range kept {
		if !k.recorded {
			continue
		}
		if k.shared {
			shared = append(shared, id)
			continue
		}
		kinds = append(kinds, id.GroupKind())
		if id.Namespace != "" {
			nss.Insert(id.Namespace)
		}
	}
	if len(kinds) == 0 && len(shared) == 0 {
		return inv, false
	}
	inv.GroupKinds = inventory.UnionKinds(kinds, nil)
	inv.Namespaces = sets.List(nss)
	inv.Shared = shared
	return inv, true
}

// keepReason says why teardown keeps an object whatever it holds, or "" when it may go.
func keepReason(m inventory.Member, purge bool) string {
	if purge {
		return ""
	}
	switch {
	case m.ID.Group == "" && m.ID.Kind == "PersistentVolumeClaim":
		return "PersistentVolumeClaim holds data"
	case m.ID.Group == "" && m.ID.Kind == "PersistentVolume":
		return "PersistentVolume holds data"
	case m.Meta.Annotations[inventory.AnnotationKeepOnDelete] == "true":
		return "annotated " + inventory.AnnotationKeepOnDelete
	}
	return ""
}

// deleteAndWait deletes members concurrently and waits until they are gone, under the run's
// one deadline; at the deadline it names the objects that remain and the finalizers holding them.
func (c client) deleteAndWait(ctx context.Context, s inventory.ApplySet, members []inventory.Member, opts DeleteOptions, res *Result, rep Reporter) error {
	if err := kube.MaySend(ctx); err != nil {
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
			return readiness.Ended(ctx, err, func() error { return stuckError(members, opts.Timeout) })
		}
		return err
	}
	remaining := members
	err := wait.PollUntilContextCancel(ctx, readiness.PollInterval, true, func(context.Context) (bool, error) {
		// The lists run under the caller's context, not the poll's: a round that has started
		// finishes, and the deadline is judged between rounds.
		live, err := c.liveMembers(ctx, s, remaining)
		if err != nil {
			return false, err
		}
		var still []inventory.Member
		for _, m := range remaining {
			meta, ok := live[m.ID]
			if !ok || (m.Meta.UID != "" && meta.UID != m.Meta.UID) {
				res.add(rep, m.ID, Deleted, "") // gone, or a new object of the same name
				continue
			}
			m.Meta = meta
			still = append(still, m)
		}
		remaining = still
		return len(still) == 0, nil
	})
	if err != nil && ctx.Err() == nil {
		return err
	}
	return readiness.Ended(ctx, err, func() error {
		stuck := stuckError(remaining, opts.Timeout)
		var namespaces []string
		for _, m := range remaining {
			if m.ID.IsNamespace() {
				namespaces = append(namespaces, m.ID.Name)
			}
		}
		if len(namespaces) == 0 {
			return stuck
		}
		// A namespace stays Terminating for what is left inside it, which kfdeploy may never
		// have applied: say what that is and why it stays. The run's deadline has passed, so
		// these reads get a budget of their own (explainBudget).
		if why := readiness.ExplainNamespaces(context.WithoutCancel(ctx), c.Client, namespaces); why != "" {
			return fmt.Errorf("%w\n%s", stuck, why)
		}
		return stuck
	})
}

// liveMembers reads, with one paginated metadata list per resource and namespace, which of the
// given members still exist.
func (c client) liveMembers(ctx context.Context, s inventory.ApplySet, members []inventory.Member) (map[manifest.ID]metav1.ObjectMeta, error) {
	groups := map[kube.GroupKey]schema.GroupKind{}
	for _, m := range members {
		groups[kube.GroupKey{Resource: m.Mapping.Resource, Namespace: m.ID.Namespace}] = m.ID.GroupKind()
	}
	live := map[manifest.ID]metav1.ObjectMeta{}
	for k, gk := range groups {
		err := c.EachMetadata(ctx, k.Resource, k.Namespace, s.Selector(), func(item *metav1.PartialObjectMetadata) {
			live[manifest.ID{Group: gk.Group, Kind: gk.Kind, Namespace: item.Namespace, Name: item.Name}] = item.ObjectMeta
		})
		if err != nil {
			return nil, fmt.Errorf("check %s in %q are gone: %w", kube.KindString(gk), k.Namespace, err)
		}
	}
	return live, nil
}

func (c client) deleteMember(ctx context.Context, m inventory.Member) error {
	policy := metav1.DeletePropagationBackground
	pre := metav1.Preconditions{}
	if m.Meta.UID != "" {
		pre.UID = &m.Meta.UID
	}
	err := c.Metadata.Resource(m.Mapping.Resource).Namespace(m.ID.Namespace).Delete(ctx, m.ID.Name,
		metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &pre})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s: %w", m.ID, err)
	}
	return nil
}

func stuckError(stuck []inventory.Member, timeout time.Duration) error {
	lines := make([]string, 0, len(stuck))
	for _, m := range stuck {
		line := m.ID.String()
		if len(m.Meta.Finalizers) > 0 {
			line += " (finalizers: " + strings.Join(m.Meta.Finalizers, ", ") + ")"
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return fmt.Errorf("%d objects still present after %s; remove the finalizers if their controllers are gone, then rerun delete:\n  %s",
		len(lines), timeout, strings.Join(lines, "\n  "))
}

// sortForDelete orders members for deletion: custom resources first, then levels in reverse.
func sortForDelete(ms []inventory.Member) []inventory.Member {
	sort.Slice(ms, func(i, j int) bool {
		li, lj := manifest.Level(ms[i].ID.GroupKind()), manifest.Level(ms[j].ID.GroupKind())
		if li != lj {
			return li > lj
		}
		return ms[i].ID.String() < ms[j].ID.String()
	})
	return ms
}

func sortedIDs(m map[manifest.ID]inventory.Member) []manifest.ID {
	ids := make([]manifest.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}
