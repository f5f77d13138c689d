package engine

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

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
func waitTargets(snap *Snapshot, plan *Plan, res *Result) (pending []readiness.Target, ready int) {
	steps := append([]Step{}, plan.Namespaces...)
	for _, level := range plan.Levels {
		steps = append(steps, level...)
	}
	for _, st := range steps {
		if st.sharedWith != (inventory.AppRef{}) {
			continue // not sent and not a member of this set: its owner waits for it
		}
		if res.appliedReady(st.ID) {
			ready++
			continue
		}
		if st.Change == ChangeNone && st.target.mapping != nil {
			if o := snap.Cached(st.target.mapping.Resource.GroupResource(), st.ID.Namespace, st.ID.Name); o != nil && o.Object != nil && readiness.Current(o.Object) {
				ready++
				continue
			}
		}
		pending = append(pending, st.target.waitTarget())
	}
	return pending, ready
}

// noteApplied records an object whose apply response is already Current.
func (r *Result) noteApplied(id manifest.ID, out *unstructured.Unstructured) {
	if !readiness.Current(out) {
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

// waitTarget is what the readiness waits know of a planned object.
func (p planned) waitTarget() readiness.Target {
	return readiness.Target{ID: p.id, Object: p.obj, Mapping: p.mapping}
}

// waitTargetsOf lists the readiness targets of planned objects.
func waitTargetsOf(ps []planned) []readiness.Target {
	out := make([]readiness.Target, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.waitTarget())
	}
	return out
}
