package engine

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// AnnotationAppliedHash records, on every object kfdeploy applies, the hash of exactly what it
// sent (without this annotation). A later apply whose content hashes the same, on an object
// whose kfdeploy fields are those its last apply left (see decide), has nothing to send.
const AnnotationAppliedHash = "kfdeploy.dev/applied-hash"

// Step is what the plan does with one object, and why.
type Step struct {
	ID     manifest.ID
	Change Change
	Reason string
	target planned          // the object to send (create, update, unchanged)
	liveRV string           // the live resourceVersion the plan saw (update, unchanged)
	fields string           // unchanged: the fingerprint of kfdeploy's fields, recorded again
	member inventory.Member // the live member (prune, keep)
	// sharedWith is the app that owns the object this step leaves to it (see planShared).
	sharedWith inventory.AppRef
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
			if st.sharedWith != (inventory.AppRef{}) {
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

// contentHash is the hash of what is sent for o, without the hash annotation itself. o is not
// changed: without that annotation, its own maps are encoded; with it, copies of the maps on
// the way to the annotations.
func contentHash(o *unstructured.Unstructured) (string, error) {
	obj := o.Object
	if ann := o.GetAnnotations(); ann != nil {
		delete(ann, AnnotationAppliedHash)
		obj = maps.Clone(o.Object)
		md := maps.Clone(obj["metadata"].(map[string]any)) // a map: it holds the annotations
		obj["metadata"] = md
		if len(ann) == 0 {
			delete(md, "annotations")
		} else {
			values := make(map[string]any, len(ann))
			for k, v := range ann {
				values[k] = v
			}
			md["annotations"] = values
		}
	}
	// encoding/json writes map keys sorted: the same object gives the same bytes.
	data, err := json.Marshal(obj)
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

// fieldsFingerprint identifies kfdeploy's own fields on an object it applied with content hash:
// the hash with the API version and field set of kfdeploy's Apply entry in managedFields (in a
// canonical encoding, so the metadata list and an apply response give the same), or "" when
// there is no such entry. After an apply, kfdeploy's field set is exactly the fields it sent;
// a later change or removal of one of them by another manager moves it out of the set, while
// writes to fields kfdeploy does not own leave the set as it is. Recording the set the server
// computed, rather than computing the expected set from the object (structured-merge-diff with
// the server's OpenAPI schemas of every group, read on each run), keeps the plan to the
// metadata lists it reads anyway.
func fieldsFingerprint(hash string, fields []metav1.ManagedFieldsEntry) string {
	for _, f := range fields {
		if f.Manager != inventory.FieldManager || f.Operation != metav1.ManagedFieldsOperationApply || f.Subresource != "" || f.FieldsV1 == nil {
			continue
		}
		canonical, ok := canonicalFields(f.FieldsV1.GetRawBytes())
		if !ok {
			return ""
		}
		sum := sha256.Sum256([]byte(hash + "\n" + f.APIVersion + "\n" + string(canonical)))
		return base64.RawURLEncoding.EncodeToString(sum[:16])
	}
	return ""
}

// decide is the planner's rule for one desired object given its live metadata (nil when it is
// not a live member) and the fingerprint the inventory recorded for it after kfdeploy's last
// apply. It sends unless the object exists, carries the hash of what would be sent, and
// kfdeploy's fields on it are exactly those that apply left: same hash, same field set. Fields
// other managers own (a bound claim's volumeName, an injected caBundle, status) do not count;
// a field of kfdeploy's that another manager changed or removed does.
func decide(hash string, live *metav1.ObjectMeta, recorded string, sendAll bool) (Change, string) {
	if live == nil {
		return ChangeCreate, "not in the cluster as a member of the app"
	}
	if sendAll {
		return ChangeUpdate, "every object is sent (--skip-unchanged=false)"
	}
	switch applied, ok := live.Annotations[AnnotationAppliedHash]; {
	case !ok:
		return ChangeUpdate, "no " + AnnotationAppliedHash + " annotation: not applied by this version of kfdeploy"
	case applied != hash:
		return ChangeUpdate, "content differs from the last apply"
	}
	switch current := fieldsFingerprint(hash, live.ManagedFields); {
	case current == "":
		return ChangeUpdate, "managedFields hold no " + inventory.FieldManager + " apply entry"
	case recorded == "":
		return ChangeUpdate, "the inventory records no field set of kfdeploy's last apply (applied by an older kfdeploy, or that apply did not finish)"
	case current != recorded:
		return ChangeUpdate, "kfdeploy's fields are not those of its last apply: another field manager changed or removed one of them (or that apply did not finish)"
	}
	return ChangeNone, "unchanged since the last apply"
}

// planSteps decides, per desired object, what to send, from the live members by ID and the
// fingerprints the inventory recorded (by ID string). The objects are decided concurrently
// (each decision hashes kfdeploy's fields on the live object); the maps are only read.
func planSteps(targets []planned, live map[manifest.ID]inventory.Member, recorded map[string]string, sendAll bool) []Step {
	steps := make([]Step, len(targets))
	forEachConcurrently(len(targets), func(i int) {
		t := targets[i]
		var meta *metav1.ObjectMeta
		if m, ok := live[t.id]; ok {
			meta = &m.Meta
		}
		change, reason := decide(t.hash, meta, recorded[t.id.String()], sendAll)
		st := Step{ID: t.id, Change: change, Reason: reason, target: t}
		if meta != nil {
			st.liveRV = meta.ResourceVersion
		}
		if change == ChangeNone {
			st.fields = recorded[t.id.String()]
		}
		steps[i] = st
	})
	return steps
}

// planPrune lists the live members that are not desired: pruned, or kept when teardown keeps
// them (data-holding kinds, keep-on-delete) or held says why they must stay (a CRD that holds
// custom resources, an object another app lists); with prune off, every one is kept. Sorted
// in deletion order.
func planPrune(members map[manifest.ID]inventory.Member, desired sets.Set[manifest.ID], prune bool, held map[manifest.ID]string) []Step {
	var stale []inventory.Member
	for id, m := range members {
		if !desired.Has(id) {
			stale = append(stale, m)
		}
	}
	if !prune {
		sort.Slice(stale, func(i, j int) bool { return stale[i].ID.String() < stale[j].ID.String() })
	} else {
		stale = sortForDelete(stale)
	}
	steps := make([]Step, 0, len(stale))
	for _, m := range stale {
		reason := keepReason(m, false)
		if reason == "" {
			reason = held[m.ID]
		}
		switch {
		case !prune:
			steps = append(steps, Step{ID: m.ID, Change: ChangeKeep, Reason: "no longer in the app; pruning is off (--prune=false)", member: m})
		case reason != "":
			steps = append(steps, Step{ID: m.ID, Change: ChangeKeep, Reason: "no longer in the app; kept: " + reason, member: m})
		default:
			steps = append(steps, Step{ID: m.ID, Change: ChangePrune, Reason: "no longer in the app", member: m})
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
