package engine

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Snapshot is one command's reads of the cluster (snapshot.Snapshot) together with the app's
// desired objects, prepared for planning once: preflight's plan and apply's plan and wait all
// read through it.
type Snapshot struct {
	*snapshot.Snapshot
	objs []*unstructured.Unstructured
	// desired is objs labelled, scoped, hashed and split by level, once (see prepared).
	desiredOnce sync.Once
	desired     *desiredSet
	desiredErr  error
}

// NewSnapshot prepares the reads of one command about the app s with the desired objects objs
// (nil for a command that applies nothing). Nothing is read until it is asked for.
func NewSnapshot(c *kube.Client, s inventory.ApplySet, objs []*unstructured.Unstructured, opts snapshot.Options) *Snapshot {
	return &Snapshot{Snapshot: snapshot.New(c, s, opts), objs: objs}
}

// WithObjects is the snapshot for other desired objects of the same app (the app's manifests
// read again), sharing what was read of the cluster.
func (s *Snapshot) WithObjects(objs []*unstructured.Unstructured) *Snapshot {
	return &Snapshot{Snapshot: s.Snapshot, objs: objs}
}

// Plan computes, from the snapshot, what an apply of its objects would do. The reads behind it
// are made once: a second plan (apply's after preflight's) costs no request.
func (s *Snapshot) Plan(ctx context.Context, prune, sendAll bool) (*Plan, error) {
	d, err := s.prepared()
	if err != nil {
		return nil, err
	}
	nsSteps, _, err := s.planNamespaces(ctx, d, sendAll)
	if err != nil {
		return nil, err
	}
	plan, _, err := s.planWithInventory(ctx, d, nsSteps, prune, sendAll)
	if err != nil {
		return nil, err
	}
	return &plan, nil
}

// prepared is the desired objects labelled, scoped, hashed and split by level, once.
func (s *Snapshot) prepared() (*desiredSet, error) {
	s.desiredOnce.Do(func() { s.desired, s.desiredErr = client{s.Client()}.prepare(s.Set(), s.objs) })
	return s.desired, s.desiredErr
}

// planWithInventory reads the inventory and the live members and plans the levels and the
// pruning.
func (s *Snapshot) planWithInventory(ctx context.Context, d *desiredSet, nsSteps []Step, prune, sendAll bool) (Plan, inventory.Record, error) {
	inv, err := s.Inventory(ctx)
	if err != nil {
		return Plan{}, inv, err
	}
	existing := map[manifest.ID]inventory.Member{}
	if inv.Exists {
		existing, err = s.Members(ctx, inv.GroupKinds, inv.Namespaces)
		if err != nil {
			return Plan{}, inv, err
		}
	}
	plan := Plan{Namespaces: nsSteps}
	for l := range d.levels {
		plan.Levels[l] = planSteps(d.levels[l], existing, inv.AppliedFields, sendAll)
	}
	parents, err := s.Parents(ctx)
	if err != nil {
		return Plan{}, inv, err
	}
	c := client{s.Client()}
	if plan.Shared, err = c.planShared(ctx, s.Set(), &plan, parents); err != nil {
		return Plan{}, inv, err
	}
	if prune {
		if plan.Prune, err = c.planPruneLive(ctx, s.Set(), inv, existing, d.ids, parents); err != nil {
			return Plan{}, inv, err
		}
	}
	return plan, inv, nil
}

// planNamespaces plans the app's namespaces, which are applied before the rest of the plan is
// made: from their live state and the fingerprints the inventory records.
func (s *Snapshot) planNamespaces(ctx context.Context, d *desiredSet, sendAll bool) ([]Step, sets.Set[string], error) {
	inv, err := s.Inventory(ctx)
	if err != nil {
		return nil, nil, err
	}
	live, missing, err := s.namespacesBefore(ctx, d.namespaces)
	if err != nil {
		return nil, nil, err
	}
	return planSteps(d.namespaces, live, inv.AppliedFields, sendAll), missing, nil
}

// namespacesBefore reads the app's namespaces before they are applied: the live ones (to tell
// unchanged from configured) and the names of those that do not exist yet.
func (s *Snapshot) namespacesBefore(ctx context.Context, plans []planned) (map[manifest.ID]inventory.Member, sets.Set[string], error) {
	live := map[manifest.ID]inventory.Member{}
	missing := sets.New[string]()
	for _, p := range plans {
		ns, err := s.Namespace(ctx, p.id.Name)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("get namespace %s: %w", p.id.Name, err)
		case ns == nil:
			missing.Insert(p.id.Name)
		default:
			live[p.id] = inventory.Member{ID: p.id, Mapping: p.mapping, Meta: ns.ObjectMeta}
		}
	}
	return live, missing, nil
}
