package preflight

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// inPlaceKinds are the kinds with fields the API server refuses to change after creation:
// workload selectors, a StatefulSet's claim templates and service name, Job templates, a
// Service's ClusterIP, a bound claim's spec, a PV's source, a StorageClass's provisioner and
// parameters, a binding's roleRef, immutable Secrets and ConfigMaps, and a CRD's stored
// versions. Objects of other kinds always take a new manifest.
var inPlaceKinds = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:                               true,
	{Group: "apps", Kind: "StatefulSet"}:                              true,
	{Group: "apps", Kind: "DaemonSet"}:                                true,
	{Group: "batch", Kind: "Job"}:                                     true,
	{Kind: "Service"}:                                                 true,
	{Kind: "PersistentVolumeClaim"}:                                   true,
	{Kind: "PersistentVolume"}:                                        true,
	{Kind: "Secret"}:                                                  true,
	{Kind: "ConfigMap"}:                                               true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                   true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: true,
}

// upgradeCheck: every object of the app that exists already can take its new manifest in
// place. Each one of inPlaceKinds is applied with a server-side dry run (nothing persists), so
// the API server's own validation says what apply would be refused; an upgrade that cannot be
// made in place (a changed selector, a claim's StorageClass, a removed stored CRD version)
// then stops before anything is written, with what to do.
type upgradeCheck struct{ e *env }

func (c *upgradeCheck) Name() string { return "upgrade" }

func (c *upgradeCheck) Run(ctx context.Context) []Finding {
	existing := c.existingNamespaces(ctx)
	set := inventory.ApplySet{App: c.e.app, Namespace: c.e.ns}
	var mu sync.Mutex
	var refused []Finding
	var errs []error
	checked := 0
	var candidates []target
	for _, t := range c.e.resolved() {
		if t.err != nil || t.fromCRD || !inPlaceKinds[t.id.GroupKind()] || (t.namespaced && !existing[t.id.Namespace]) {
			continue
		}
		candidates = append(candidates, t)
	}
	unchanged := map[manifest.ID]bool{}
	if len(candidates) > 0 {
		unchanged = c.unchanged(ctx)
	}
	skipped := 0
	// The group's context ends with Wait; what follows uses ctx.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(getConcurrency)
	for _, t := range candidates {
		if unchanged[t.id] {
			skipped++
			continue
		}
		if t.id.IsCRD() {
			g.Go(func() error {
				f, refusedCRD, err := c.storedVersions(gctx, t)
				mu.Lock()
				defer mu.Unlock()
				checked++
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("%s: %w", t.id, err))
				case refusedCRD:
					refused = append(refused, f)
				}
				return nil
			})
			continue
		}
		g.Go(func() error {
			obj := t.obj.DeepCopy()
			labels := obj.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[inventory.LabelPartOf] = set.ID()
			labels[inventory.LabelApp] = set.App
			obj.SetLabels(labels)
			if t.namespaced {
				obj.SetNamespace(t.id.Namespace)
			}
			r := c.e.client.Dynamic.Resource(t.gvr)
			opts := metav1.ApplyOptions{FieldManager: inventory.FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}}
			var err error
			if t.namespaced {
				_, err = r.Namespace(t.id.Namespace).Apply(gctx, obj.GetName(), obj, opts)
			} else {
				_, err = r.Apply(gctx, obj.GetName(), obj, opts)
			}
			mu.Lock()
			defer mu.Unlock()
			checked++
			switch {
			case err == nil, apierrors.IsNotFound(err):
			case apierrors.IsInvalid(err):
				refused = append(refused, refusedFinding(t.id, t.gvr, err))
			default:
				errs = append(errs, fmt.Errorf("%s: %w", t.id, err))
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(refused, func(i, j int) bool { return refused[i].Finding < refused[j].Finding })
	findings := append(refused, c.leftClaims(ctx, set, existing)...)
	if len(errs) > 0 {
		findings = append(findings, Finding{Status: Warn,
			Finding: fmt.Sprintf("%d of the app's objects could not be tried with a dry run: %v", len(errs), errs[0]),
			Remedy:  "grant patch on the app's kinds (see permissions) to check that they can be changed in place"})
	}
	if len(refused) == 0 {
		findings = append(findings, Finding{Status: OK,
			Finding: fmt.Sprintf("%d objects of the app of kinds with fields that cannot change after creation take their manifests in place (server-side dry-run apply; CRDs: every stored version kept)%s", checked, skippedNote(skipped))})
	}
	return findings
}

// unchanged lists the objects that apply's plan leaves unchanged: their content is what
// kfdeploy applied last, which the API server accepted then, so no field of theirs that cannot
// change is changed now and a dry run would only repeat the apply's cost (on a re-apply with
// nothing changed, the whole cost). The plan is the snapshot's, whose reads apply's plan
// shares. When the plan cannot be made, every object is tried.
func (c *upgradeCheck) unchanged(ctx context.Context) map[manifest.ID]bool {
	out := map[manifest.ID]bool{}
	plan, err := c.e.snap.Plan(ctx, false, false)
	if err != nil {
		return out
	}
	for _, st := range plan.Steps() {
		if st.Change == engine.ChangeNone {
			out[st.ID] = true
		}
	}
	return out
}

func skippedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d unchanged since the last apply were not tried again", n)
}

// storedVersions checks a CRD on the client side rather than by a dry run (the app's CRDs are
// large, and a version that objects are stored in is their one field that cannot go): every
// version in the live CRD's status.storedVersions must stay in the manifest's spec.versions,
// or the API server refuses the update.
func (c *upgradeCheck) storedVersions(ctx context.Context, t target) (Finding, bool, error) {
	var live *unstructured.Unstructured
	// A snapshot of whole objects has the CRD's status already; otherwise it is read (only the
	// CRDs whose manifests changed come here).
	if o := c.e.snap.Cached(t.gvr.GroupResource(), "", t.id.Name); o != nil && o.Object != nil {
		live = o.Object
	} else {
		got, err := c.e.client.Dynamic.Resource(t.gvr).Get(ctx, t.id.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return Finding{}, false, nil
		}
		if err != nil {
			return Finding{}, false, err
		}
		live = got
	}
	stored, _, _ := unstructured.NestedStringSlice(live.Object, "status", "storedVersions")
	versions, _, _ := unstructured.NestedSlice(t.obj.Object, "spec", "versions")
	keep := map[string]bool{}
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok {
			name, _ := m["name"].(string)
			keep[name] = true
		}
	}
	var dropped []string
	for _, v := range stored {
		if !keep[v] {
			dropped = append(dropped, v)
		}
	}
	if len(dropped) == 0 {
		return Finding{}, false, nil
	}
	return Finding{Status: Fail,
		Finding: fmt.Sprintf("%s cannot take its new manifest in place: status.storedVersions: objects are stored in %s, which the new spec.versions drops",
			t.id, strings.Join(dropped, ", ")),
		Remedy: inPlaceRemedy(t.id, t.gvr)}, true, nil
}

// existingNamespaces reads which of the app's namespaces exist; objects in the others are
// created, not changed.
func (c *upgradeCheck) existingNamespaces(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	for _, ns := range c.e.namespaces() {
		if live, err := c.e.snap.Namespace(ctx, ns); err == nil && live != nil {
			out[ns] = true
		}
	}
	return out
}

// refusedFinding is one object whose manifest the API server refuses: what it refuses, and
// how to get past it.
func refusedFinding(id manifest.ID, gvr schema.GroupVersionResource, err error) Finding {
	what := err.Error()
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil && len(status.Status().Details.Causes) > 0 {
		var parts []string
		for _, cause := range status.Status().Details.Causes {
			// Some messages carry a diff of the spec after their first line.
			msg, _, _ := strings.Cut(cause.Message, "\n")
			if cause.Field != "" {
				msg = cause.Field + ": " + msg
			}
			parts = append(parts, strings.TrimSpace(msg))
		}
		what = strings.Join(parts, "; ")
	}
	return Finding{Status: Fail,
		Finding: fmt.Sprintf("%s cannot take its new manifest in place: %s", id, what),
		Remedy:  inPlaceRemedy(id, gvr)}
}

// inPlaceRemedy says, per kind, how to get past a change the API server refuses.
func inPlaceRemedy(id manifest.ID, gvr schema.GroupVersionResource) string {
	resource := gvr.Resource
	if gvr.Group != "" {
		resource += "." + gvr.Group
	}
	del := "kubectl delete " + resource + " " + id.Name
	if id.Namespace != "" {
		del += " -n " + id.Namespace
	}
	switch id.GroupKind() {
	case schema.GroupKind{Kind: "PersistentVolumeClaim"}:
		return "a claim keeps its spec (only its size may grow, where the StorageClass allows): set the component's storage params back to the claim's (kubectl get pvc " +
			id.Name + " -n " + id.Namespace + " -o yaml), or copy the data to a new claim first; apply never deletes claims"
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return del + " --cascade=orphan (its pods and claims stay), then apply again"
	case schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:
		return "every version in the CRD's status.storedVersions must stay in spec.versions: rewrite the stored objects in a version the new CRD serves, drop the old one from status.storedVersions (kubectl edit crd " +
			id.Name + " --subresource=status), then apply again"
	case schema.GroupKind{Kind: "Service"}:
		return del + ", then apply again (the Service gets a new ClusterIP)"
	case schema.GroupKind{Kind: "PersistentVolume"}:
		return "a PersistentVolume keeps its source: create a new PV for the claim's data instead, or keep the old settings"
	}
	return del + ", then apply again: it is recreated from the manifests"
}

// leftClaims warns of the app's claims that its manifests no longer have (a component removed,
// or a claim renamed by a new release): apply never prunes claims, so the data stays, but no
// workload of the app mounts it any more.
func (c *upgradeCheck) leftClaims(ctx context.Context, set inventory.ApplySet, existing map[string]bool) []Finding {
	want := map[string]bool{}
	for _, t := range c.e.resolved() {
		if t.id.GroupKind() == (schema.GroupKind{Kind: "PersistentVolumeClaim"}) {
			want[t.id.Namespace+"/"+t.id.Name] = true
		}
	}
	var out []Finding
	for _, ns := range c.e.namespaces() {
		if !existing[ns] {
			continue
		}
		claims, err := c.e.snap.List(ctx, claimsResource, ns)
		if err != nil {
			out = append(out, Finding{Status: Warn, Finding: fmt.Sprintf("cannot list the app's claims in %s: %v", ns, err),
				Remedy: "grant list on persistentvolumeclaims to find claims that a new release no longer uses"})
			continue
		}
		for _, o := range claims {
			pvc := o.Meta
			if pvc.Labels[inventory.LabelPartOf] != set.ID() || want[pvc.Namespace+"/"+pvc.Name] {
				continue
			}
			out = append(out, Finding{Status: Warn,
				Finding: fmt.Sprintf("claim %s/%s of the app is no longer in its manifests: apply keeps it and its data, but nothing of the app mounts it any more", pvc.Namespace, pvc.Name),
				Remedy:  fmt.Sprintf("copy the data it holds to the claim that replaces it, then delete it (kubectl delete pvc %s -n %s) or keep it", pvc.Name, pvc.Namespace)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Finding < out[j].Finding })
	return out
}
