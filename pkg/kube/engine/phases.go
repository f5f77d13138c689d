package engine

import (
	"strings"
	"time"
)

// Phase is how long one phase of a run took: a preflight check ("preflight nodes"), the
// plan, a level, pruning, the wait.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// NewPhase is a phase that began at started and ends now.
func NewPhase(name string, started time.Time) Phase {
	return Phase{Name: name, Seconds: time.Since(started).Round(time.Millisecond).Seconds()}
}

// phase records a phase of the run that began at started and ends now.
func (r *Result) phase(name string, started time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Phases = append(r.Phases, NewPhase(name, started))
}

// Wrote reports whether the run wrote (created, configured or pruned) an object of a kind:
// "Kind" for the core group, "Kind.group" otherwise.
func (r *Result) Wrote(kind string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.Objects {
		if o.Action != Created && o.Action != Configured && o.Action != Pruned {
			continue
		}
		parts := strings.Split(o.ID, "/")
		if len(parts) >= 2 && parts[len(parts)-2] == kind {
			return true
		}
	}
	return false
}
