package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// getConcurrency bounds the metadata reads of the app's objects.
const getConcurrency = 16

// maxConflictRows bounds the rows listing objects another manager owns.
const maxConflictRows = 20

// namespaceCheck: the app's namespaces are not being deleted, and no object the app would
// write already exists under another owner.
type namespaceCheck struct{ e *env }

func (c *namespaceCheck) Name() string { return "namespace" }

func (c *namespaceCheck) Run(ctx context.Context) []Finding {
	var findings []Finding
	terminating := map[string]bool{}
	missing := map[string]bool{}
	created := map[string]bool{}
	for _, t := range c.e.resolved() {
		if t.id.Kind == "Namespace" && t.id.Group == "" {
			created[t.id.Name] = true
		}
	}
	for _, ns := range c.e.namespaces() {
		live, err := c.e.snap.Namespace(ctx, ns)
		switch {
		case err == nil && live == nil && created[ns]:
			missing[ns] = true
			findings = append(findings, Finding{Status: OK, Finding: fmt.Sprintf("namespace %s does not exist yet: apply creates it (and delete removes it)", ns)})
		case err == nil && live == nil:
			missing[ns] = true
			findings = append(findings, Finding{Status: Fail, Finding: fmt.Sprintf("namespace %s does not exist and the app does not create it", ns),
				Remedy: fmt.Sprintf("kubectl create namespace %s, or add the core component (it creates the namespace)", ns)})
		case err != nil:
			findings = append(findings, Finding{Status: Warn, Finding: fmt.Sprintf("cannot read namespace %s: %v", ns, err),
				Remedy: "grant get on namespaces to check it"})
		case live.Status.Phase == corev1.NamespaceTerminating || live.DeletionTimestamp != nil:
			terminating[ns] = true
			findings = append(findings, terminatingFinding(live))
		default:
			findings = append(findings, Finding{Status: OK, Finding: namespaceOK(live, c.e.app)})
		}
	}
	conflicts, errs := c.conflicts(ctx, terminating, missing)
	parents, err := c.e.snap.Parents(ctx)
	if err != nil && len(conflicts) > 0 {
		findings = append(findings, Finding{Status: Warn, Finding: fmt.Sprintf("cannot tell which kfdeploy apps own the objects below: %v", err),
			Remedy: "grant list on secrets cluster-wide, so that preflight can read the other apps' inventories"})
	}
	owned, conflicts := c.ownedElsewhere(conflicts, parents)
	findings = append(findings, owned...)
	findings = append(findings, capConflicts(conflicts)...)
	if len(errs) > 0 {
		findings = append(findings, Finding{Status: Warn,
			Finding: fmt.Sprintf("the app's objects of %d kinds and namespaces could not be looked up: %v", len(errs), errs[0]),
			Remedy:  "grant list on the app's kinds (see permissions) to check for objects another manager owns"})
	}
	return findings
}

func terminatingFinding(ns *corev1.Namespace) Finding {
	detail := ""
	for _, cond := range ns.Status.Conditions {
		if cond.Status == corev1.ConditionTrue && cond.Message != "" &&
			(cond.Type == corev1.NamespaceContentRemaining || cond.Type == corev1.NamespaceFinalizersRemaining) {
			detail = ": " + cond.Message
			break
		}
	}
	return Finding{Status: Fail,
		Finding: fmt.Sprintf("namespace %s is Terminating (deleted, waiting for its content to go)%s", ns.Name, detail),
		Remedy:  fmt.Sprintf("wait until it is gone (kubectl get namespace %s), or remove the finalizers that hold it; or set another spec.namespace", ns.Name)}
}

func namespaceOK(ns *corev1.Namespace, app string) string {
	switch owner := ns.Labels[inventory.LabelApp]; owner {
	case app:
		return fmt.Sprintf("namespace %s is Active, managed by this app", ns.Name)
	case "":
		return fmt.Sprintf("namespace %s is Active; kfdeploy did not create it, so delete keeps it", ns.Name)
	default:
		return fmt.Sprintf("namespace %s is Active, shared with kfdeploy app %s; delete keeps it while that app uses it", ns.Name, owner)
	}
}

// conflict is an object of the app that exists under another owner.
type conflict struct {
	id       string
	owner    string // another kfdeploy app, or ""
	managers []string
	t        target
	live     metav1.ObjectMeta
}

// ownedElsewhere judges the conflicts whose owner is another kfdeploy app on the cluster (its
// inventory lists them): a CustomResourceDefinition both apps declare identically is shared;
// anything else cannot serve two apps, and apply would take it over from the other app, so it
// fails naming that app. The other conflicts (leftovers of no live app, other tools' objects)
// are returned to be warned about.
func (c *namespaceCheck) ownedElsewhere(cs []conflict, parents inventory.Parents) ([]Finding, []conflict) {
	var findings []Finding
	var rest []conflict
	for _, cf := range cs {
		owner, ref, ok := parents.Owner(cf.t.id, cf.live)
		if !ok {
			rest = append(rest, cf)
			continue
		}
		if why := engine.ShareVerdict(cf.t.obj, owner, cf.live); why != "" {
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("%s belongs to kfdeploy %s and cannot serve two apps: %s", cf.id, ref, why),
				Remedy:  fmt.Sprintf("remove the component that declares it from this app (kfdeploy components), or delete %s first; %s", ref, c.fileOf(cf.t))})
			continue
		}
		findings = append(findings, Finding{Status: OK,
			Finding: fmt.Sprintf("%s is shared with kfdeploy %s, which declares it identically: both inventories record it and neither app's delete removes it while the other lists it", cf.id, ref)})
	}
	return findings, rest
}

// fileOf names the manifest file of t, for a remedy.
func (c *namespaceCheck) fileOf(t target) string {
	if f := c.e.opts.Files[manifest.IDOf(t.obj)]; f != "" {
		return "it comes from " + f
	}
	return "run 'kfdeploy generate' to see which component renders it"
}

// conflicts finds, in the snapshot's lists (one per kind and namespace, shared with apply's
// plan), each object of the app that may exist: not in a missing or terminating namespace,
// not a kind the app's own CRDs introduce. Whether one is a conflict is ownerConflict's call.
func (c *namespaceCheck) conflicts(ctx context.Context, terminating, missing map[string]bool) ([]conflict, []error) {
	var out []conflict
	var errs []error
	self := inventory.ApplySet{App: c.e.app, Namespace: c.e.ns}.ID()
	failed := map[string]bool{} // one error per list, not per object
	for _, t := range c.e.resolved() {
		if t.err != nil || t.fromCRD || terminating[t.id.Namespace] || missing[t.id.Namespace] {
			continue
		}
		if t.id.Kind == "Namespace" && t.id.Group == "" {
			continue // reported above
		}
		live, err := c.e.snap.Get(ctx, t.gvr, t.id.Namespace, t.id.Name)
		switch {
		case err != nil:
			if key := t.gvr.String() + "/" + t.id.Namespace; !failed[key] {
				failed[key] = true
				errs = append(errs, fmt.Errorf("look up %s: %w", t.id, err))
			}
		case live != nil:
			if cf, ok := ownerConflict(t, &live.Meta, self); ok {
				out = append(out, cf)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, errs
}

// ownerConflict decides whether a live object the app would write is held by another owner.
func ownerConflict(t target, live *metav1.ObjectMeta, self string) (conflict, bool) {
	// Compared by ApplySet, not by app name: two apps of one name live in two namespaces.
	if live.Labels[inventory.LabelPartOf] == self {
		return conflict{}, false
	}
	return conflict{id: t.id.String(), owner: live.Labels[inventory.LabelApp], managers: managers(live), t: t, live: *live}, true
}

// managers lists the field managers of an object other than kfdeploy; managers of the status
// subresource only (controllers, the API server) never conflict with an apply of the spec.
func managers(o *metav1.ObjectMeta) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range o.ManagedFields {
		if f.Subresource == "status" {
			continue
		}
		if f.Manager != inventory.FieldManager && !seen[f.Manager] {
			seen[f.Manager] = true
			out = append(out, f.Manager)
		}
	}
	sort.Strings(out)
	return out
}

func capConflicts(cs []conflict) []Finding {
	var out []Finding
	for i, c := range cs {
		if i == maxConflictRows {
			out = append(out, Finding{Status: Warn, Finding: fmt.Sprintf("and %d more objects of the app exist under another owner", len(cs)-maxConflictRows),
				Remedy: "see 'kfdeploy apply --dry-run=server' for all of them"})
			break
		}
		who := "not managed by this app"
		if c.owner != "" {
			who = "managed by kfdeploy app " + c.owner
		}
		if len(c.managers) > 0 {
			who += " (field managers: " + strings.Join(c.managers, ", ") + ")"
		}
		out = append(out, Finding{Status: Warn,
			Finding: fmt.Sprintf("%s exists, %s: apply would take it over", c.id, who),
			Remedy:  "rename the object in the app, delete the existing one, or accept that this app takes it over (conflicting fields need --force-conflicts)"})
	}
	return out
}
