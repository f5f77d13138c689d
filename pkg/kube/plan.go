package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// AnnotationAppliedHash records, on every object kfdeploy applies, the hash of exactly what it
// sent (without this annotation). A later apply whose content hashes the same, on an object no
// other field manager wrote since, has nothing to send.
const AnnotationAppliedHash = "kfdeploy.dev/applied-hash"

// Step is what the plan does with one object, and why.
type Step struct {
	ID     manifest.ID
	Change Change
	Reason string
	target planned // the object to send (create, update, unchanged)
	liveRV string  // the live resourceVersion the plan saw (update, unchanged)
	member member  // the live member (prune, keep)
	// sharedWith is the app that owns the object this step leaves to it (see planShared).
	sharedWith AppRef
}

// Plan is an apply computed from the desired objects and the live inventory without writing:
// the namespaces (applied before the lock is taken), each level's objects, and the members
// that are no longer wanted.
type Plan struct {
	Namespaces []Step
	Levels     [manifest.NumLevels][]Step
	Prune      []Step
	// Shared are the objects another app owns that this plan leaves to it (see planShared).
	Shared []manifest.ID
}

// Steps lists every step in the order the executor takes them.
func (p *Plan) Steps() []Step {
	out := append([]Step{}, p.Namespaces...)
	for _, l := range p.Levels {
		out = append(out, l...)
	}
	return append(out, p.Prune...)
}

// targets lists the desired objects of the plan, the levels' and then the namespaces', with
// the mappings their levels resolved (custom resources of CRDs installed in this run).
func (p *Plan) targets() []planned {
	var out []planned
	for _, level := range p.Levels {
		for _, st := range level {
			if st.sharedWith != (AppRef{}) {
				continue // its owner waits for it; it is not a member of this set
			}
			out = append(out, st.target)
		}
	}
	for _, st := range p.Namespaces {
		out = append(out, st.target)
	}
	return out
}

// Counts tallies the steps per change.
func (p *Plan) Counts() map[Change]int {
	counts := map[Change]int{}
	for _, s := range p.Steps() {
		counts[s.Change]++
	}
	return counts
}

// contentHash is the hash of what is sent for o, without the hash annotation itself.
func contentHash(o *unstructured.Unstructured) (string, error) {
	c := o.DeepCopy()
	if ann := c.GetAnnotations(); ann != nil {
		delete(ann, AnnotationAppliedHash)
		if len(ann) == 0 {
			ann = nil
		}
		c.SetAnnotations(ann)
	}
	// encoding/json writes map keys sorted: the same object gives the same bytes.
	data, err := json.Marshal(c.Object)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", manifest.IDOf(o), err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// stampHash sets the hash annotation on o (which is sent with it) and returns the hash.
func stampHash(o *unstructured.Unstructured) (string, error) {
	h, err := contentHash(o)
	if err != nil {
		return "", err
	}
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationAppliedHash] = h
	o.SetAnnotations(ann)
	return h, nil
}

// decide is the planner's rule for one desired object given its live metadata (nil when it is
// not a live member). It sends unless the object exists, carries the hash of what would be
// sent, and no other field manager wrote its main resource at or after kfdeploy's last apply.
func decide(hash string, live *metav1.ObjectMeta, sendAll bool) (Change, string) {
	if live == nil {
		return ChangeCreate, "not in the cluster as a member of the app"
	}
	if sendAll {
		return ChangeUpdate, "every object is sent (--skip-unchanged=false)"
	}
	switch recorded, ok := live.Annotations[AnnotationAppliedHash]; {
	case !ok:
		return ChangeUpdate, "no " + AnnotationAppliedHash + " annotation: not applied by this version of kfdeploy"
	case recorded != hash:
		return ChangeUpdate, "content differs from the last apply"
	}
	var ours *metav1.ManagedFieldsEntry
	for i, f := range live.ManagedFields {
		if f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == "" {
			ours = &live.ManagedFields[i]
		}
	}
	if ours == nil || ours.Time == nil {
		return ChangeUpdate, "managedFields hold no " + FieldManager + " apply entry"
	}
	for _, f := range live.ManagedFields {
		if f.Subresource == "status" || (f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == "") {
			continue
		}
		// Times have whole seconds: a write in the same second as ours may have come after it.
		if f.Time == nil || !f.Time.Before(ours.Time) {
			return ChangeUpdate, fmt.Sprintf("field manager %q (%s%s) wrote it at %s, not before kfdeploy's last apply at %s",
				f.Manager, f.Operation, subresourceNote(f.Subresource), timeString(f.Time), timeString(ours.Time))
		}
	}
	return ChangeNone, "unchanged since the last apply"
}

func subresourceNote(sub string) string {
	if sub == "" {
		return ""
	}
	return ", subresource " + sub
}

func timeString(t *metav1.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// planSteps decides, per desired object, what to send, from the live members by ID.
func planSteps(targets []planned, live map[manifest.ID]member, sendAll bool) []Step {
	steps := make([]Step, 0, len(targets))
	for _, t := range targets {
		var meta *metav1.ObjectMeta
		if m, ok := live[t.id]; ok {
			meta = &m.meta
		}
		change, reason := decide(t.hash, meta, sendAll)
		st := Step{ID: t.id, Change: change, Reason: reason, target: t}
		if meta != nil {
			st.liveRV = meta.ResourceVersion
		}
		steps = append(steps, st)
	}
	return steps
}

// planPrune lists the live members that are not desired: pruned, or kept when teardown keeps
// them (data-holding kinds, keep-on-delete) or held says why they must stay (a CRD that holds
// custom resources, an object another app lists); with prune off, every one is kept. Sorted
// in deletion order.
func planPrune(members map[manifest.ID]member, desired sets.Set[manifest.ID], prune bool, held map[manifest.ID]string) []Step {
	var stale []member
	for id, m := range members {
		if !desired.Has(id) {
			stale = append(stale, m)
		}
	}
	if !prune {
		sort.Slice(stale, func(i, j int) bool { return stale[i].id.String() < stale[j].id.String() })
	} else {
		stale = sortForDelete(stale)
	}
	steps := make([]Step, 0, len(stale))
	for _, m := range stale {
		reason := keepReason(m, false)
		if reason == "" {
			reason = held[m.id]
		}
		switch {
		case !prune:
			steps = append(steps, Step{ID: m.id, Change: ChangeKeep, Reason: "no longer in the app; pruning is off (--prune=false)", member: m})
		case reason != "":
			steps = append(steps, Step{ID: m.id, Change: ChangeKeep, Reason: "no longer in the app; kept: " + reason, member: m})
		default:
			steps = append(steps, Step{ID: m.id, Change: ChangePrune, Reason: "no longer in the app", member: m})
		}
	}
	return steps
}

// duplicates reports objects that are the same object once namespaces are defaulted (one
// rendered with the app's namespace, one without): the last would silently win.
func duplicates(targets []planned) error {
	seen := map[manifest.ID]bool{}
	var dups []string
	for _, t := range targets {
		if seen[t.id] {
			dups = append(dups, t.id.String())
		}
		seen[t.id] = true
	}
	if len(dups) == 0 {
		return nil
	}
	sort.Strings(dups)
	return fmt.Errorf("the manifests define %d object(s) twice once namespaces are defaulted: %v: remove one of each (run 'kfdeploy generate' to see which components)", len(dups), dups)
}
