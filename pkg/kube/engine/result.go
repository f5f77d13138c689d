package engine

import (
	"sync"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Action is what happened to one object in an apply or delete.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
	Deleted    Action = "deleted"
	Kept       Action = "kept"
	Failed     Action = "failed"
)

// Actions lists every action in report order.
var Actions = [...]Action{Created, Configured, Unchanged, Pruned, Deleted, Kept, Failed}

// Reporter receives progress while an apply or delete runs; implementations (pkg/progress)
// must be safe for concurrent use.
type Reporter interface {
	// Object reports what was done to one object, with an optional detail.
	Object(id string, action Action, detail string)
	// Step announces a phase of the run ("applying workloads (12 objects)").
	Step(format string, args ...any)
	// Waiting reports readiness: done of total, and the objects still pending.
	Waiting(what string, done, total int, pending []string)
}

// ObjectResult is what happened to one object.
type ObjectResult struct {
	ID     string `json:"id"`
	Action Action `json:"action"`
	Detail string `json:"detail,omitempty"`
}

// Result is what an apply or delete did, object by object.
type Result struct {
	Objects []ObjectResult `json:"objects"`
	// Phases is where the run's time went, in the order the phases ran (see phases.go).
	Phases []Phase `json:"phases"`
	// readyAtWrite: objects whose apply response was already ready (see waitTargets).
	readyAtWrite map[manifest.ID]bool
	// Goes lists, for a delete --purge, what the app did not create that went (or, in a dry
	// run, would go) with the CRDs and namespaces it deleted.
	Goes []Contents `json:"goes,omitempty"`
	mu   sync.Mutex
	// fields is, per object an apply sent, the fingerprint of kfdeploy's fields in the
	// server's response (see fieldsFingerprint), for the inventory to record.
	fields map[manifest.ID]string
}

func (r *Result) add(rep Reporter, id manifest.ID, action Action, detail string) {
	r.mu.Lock()
	r.Objects = append(r.Objects, ObjectResult{ID: id.String(), Action: action, Detail: detail})
	r.mu.Unlock()
	rep.Object(id.String(), action, detail)
}

// recordFields keeps the fingerprint of kfdeploy's fields on an object it applied.
func (r *Result) recordFields(id manifest.ID, fingerprint string) {
	if fingerprint == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fields == nil {
		r.fields = map[manifest.ID]string{}
	}
	r.fields[id] = fingerprint
}

// Counts tallies the objects per action.
func (r *Result) Counts() map[Action]int {
	counts := map[Action]int{}
	for _, o := range r.Objects {
		counts[o.Action]++
	}
	return counts
}
