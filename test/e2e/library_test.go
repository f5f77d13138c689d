//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/restmapper"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// fullSamplesDir holds the sample custom resources (go test runs in the package directory).
const fullSamplesDir = "../../pkg/render/testdata/samples"

const (
	labelPartOf     = "applyset.kubernetes.io/part-of"
	labelApplySetID = "applyset.kubernetes.io/id"
	gpuNodeLabel    = "nvidia.com/gpu.present"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestFullPreset is issue 3's end-to-end check: init --preset full, generate, apply (default
// timeout) brings every workload Ready on the simulated nodes, every CRD Established and every
// PVC Bound, and a re-apply then sends no apply or patch request; the sample TFJob, Experiment
// and Workflow pass a server-side dry run against the installed CRDs while the invalid ones are
// rejected by the schema; delete --purge --yes then removes the namespace and the app's
// cluster-scoped objects (CRDs, ClusterRoles, ...).
//
// Storage: nfs-provisioner's StorageClass cannot provision without a real NFS server, so every
// claim is set to storageClassName "" and the test creates one PersistentVolume per claim,
// derived from the generated manifests (not apply --nfs-server, which preflight_test covers).
// Each PV is reserved for its claim by claimRef, so that on the shared cluster no other test's
// claim takes it and no claim of this app takes another test's PV.
func TestFullPreset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// init --preset full, the params for the local cluster, generate, one reserved PV per claim.
	app := e.util().NewFullApp(t, "e2e")
	appDir, ns, objs, pvNames := app.Dir, app.Namespace, app.Objects, app.PVs
	// No training operator and no Katib run here (kwok pods run nothing), so nothing serves
	// their webhooks; test/conformance runs the real ones with their default policy, Fail.
	e.util().MustRun(t, appDir, "param", "set", "tf-job-operator", "webhookFailurePolicy", "Ignore")
	e.util().MustRun(t, appDir, "param", "set", "katib", "webhookFailurePolicy", "Ignore")
	e.util().MustRun(t, appDir, "generate")
	if len(pvNames) == 0 {
		t.Fatal("the full preset generated no PersistentVolumeClaims: expected the databases' claims")
	}

	crds := objectsOfKind(objs, "apiextensions.k8s.io", "CustomResourceDefinition")
	if len(crds) == 0 {
		t.Fatal("the full preset generated no CustomResourceDefinitions")
	}
	// CRDs are cluster-wide and may exist before the app is applied (an earlier run that was
	// never deleted, another app). Simulate such a leftover for one CRD not on the cluster
	// now: applied by kfdeploy's field manager as a member of another ApplySet. apply must
	// adopt it without a conflict.
	leftover := e.plantLeftoverCRD(t, crds)

	applyStart := time.Now()
	r := e.run(t, appDir, "apply", "-o", "json")
	t.Logf("apply took %s", time.Since(applyStart).Round(time.Second))
	if r.code != 0 {
		e.logNotReady(t, ns)
		t.Fatalf("apply exited %d within its default timeout: %s", r.code, r.stderr)
	}
	rep := parseReport(t, r)
	if rep.Error != "" || rep.Counts["failed"] != 0 {
		t.Errorf("apply: error %q, counts %v: want no failure", rep.Error, rep.Counts)
	}
	reported := map[string]string{}
	for _, o := range rep.Objects {
		reported[o.ID] = o.Action
		if o.Action == "failed" {
			t.Errorf("apply: %s failed: %s", o.ID, o.Detail)
		}
	}
	for _, o := range objs {
		id := manifest.IDOf(o).String()
		if a := reported[id]; a != "created" && a != "configured" && a != "unchanged" {
			t.Errorf("apply: %s action %q, want created, configured or unchanged", id, a)
		}
	}

	e.checkWorkloadsReady(t, ctx, ns, objs)
	appSetID := e.applySetID(t, ctx, ns)
	e.checkCRDsEstablished(t, ctx, crds, appSetID, leftover)
	e.checkClaimsBound(t, ctx, ns, pvNames)

	// Once its claims are bound and its controllers have written what they own, a re-apply
	// sends nothing (kfdeploy writes only with APPLY; PATCH by anyone to the main resources
	// is counted too, but for the pods and nodes that kwok keeps patching).
	before := e.util().ScrapeRequests(t)
	again := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	sent := e.util().ScrapeRequests(t).Since(before)
	for k, n := range sent {
		if k.Subresource == "" && (k.Verb == "APPLY" || (k.Verb == "PATCH" && k.Resource != "pods" && k.Resource != "nodes" && k.Resource != "events")) {
			t.Errorf("re-apply of the full preset with bound claims: %d %s requests on %s, want none", n, k.Verb, k.Resource)
		}
	}
	if n := again.Counts["unchanged"]; n != len(again.Objects) {
		t.Errorf("re-apply of the full preset: %d of %d objects unchanged: %v", n, len(again.Objects), again.Counts)
	}

	e.checkSamples(t, ctx, ns, crds)

	del := parseReport(t, e.mustRun(t, appDir, "delete", "--purge", "--yes", "-o", "json"))
	if del.Error != "" || del.Counts["failed"] != 0 || del.Counts["kept"] != 0 {
		t.Errorf("delete --purge: error %q, counts %v: want nothing failed or kept", del.Error, del.Counts)
	}
	eventually(t, 3*time.Minute, "namespace "+ns+" deleted", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
	e.checkClusterScopedGone(t, ns, objs, appSetID)
}

func objectsOfKind(objs []*unstructured.Unstructured, group, kind string) []*unstructured.Unstructured {
	return e2eutil.ObjectsOfKind(objs, group, kind)
}

const leftoverSetID = "applyset-e2e-earlier-run-v1"

// plantLeftoverCRD applies, as kfdeploy's field manager and as a member of another ApplySet,
// the first of the app's CRDs that is not on the cluster, and returns its name ("" if all of
// them exist already: then apply adopts those). The CRD is removed at the end if apply did not
// take it over.
func (e *env) plantLeftoverCRD(t *testing.T, crds []*unstructured.Unstructured) string {
	t.Helper()
	ctx := context.Background()
	sorted := append([]*unstructured.Unstructured(nil), crds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	for _, crd := range sorted {
		_, err := e.dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err == nil {
			t.Logf("CRD %s exists already: apply must adopt it", crd.GetName())
			continue
		}
		if !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		obj := crd.DeepCopy()
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[labelPartOf] = leftoverSetID
		labels["kfdeploy.dev/app"] = "earlier-run"
		obj.SetLabels(labels)
		if _, err := e.dyn.Resource(crdGVR).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "kfdeploy"}); err != nil {
			t.Fatalf("plant leftover CRD %s: %v", obj.GetName(), err)
		}
		name := obj.GetName()
		t.Cleanup(func() {
			live, err := e.dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
			if err == nil && live.GetLabels()[labelPartOf] == leftoverSetID {
				_ = e.dyn.Resource(crdGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
			}
		})
		t.Logf("planted CRD %s as a leftover of another app", name)
		return name
	}
	return ""
}

// applySetID reads the id of the app's ApplySet from its parent Secret.
func (e *env) applySetID(t *testing.T, ctx context.Context, ns string) string {
	t.Helper()
	parent, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "kfdeploy-app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ApplySet parent: %v", err)
	}
	id := parent.Labels[labelApplySetID]
	if id == "" {
		t.Fatalf("ApplySet parent %s/%s has no %s label", ns, parent.Name, labelApplySetID)
	}
	return id
}

// checkWorkloadsReady: every Deployment, StatefulSet and DaemonSet of the namespace is ready,
// each one of the manifests is among them, and the device plugin runs on the GPU nodes only,
// on all of them.
func (e *env) checkWorkloadsReady(t *testing.T, ctx context.Context, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	live := sets.New[string]()
	deps, err := e.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		live.Insert("Deployment/" + d.Name)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if want == 0 || d.Status.ReadyReplicas != want || d.Status.UpdatedReplicas != want {
			t.Errorf("Deployment %s: %d ready, %d updated of %d replicas", d.Name, d.Status.ReadyReplicas, d.Status.UpdatedReplicas, want)
		}
	}
	stss, err := e.kube.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stss.Items {
		live.Insert("StatefulSet/" + s.Name)
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		if want == 0 || s.Status.ReadyReplicas != want {
			t.Errorf("StatefulSet %s: %d ready of %d replicas", s.Name, s.Status.ReadyReplicas, want)
		}
	}
	gpuNodes, err := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: gpuNodeLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	gpu := sets.New[string]()
	for _, n := range gpuNodes.Items {
		gpu.Insert(n.Name)
	}
	if want := sets.New("k8s-g1", "k8s-g2", "k8s-g3", "k8s-g11"); !gpu.IsSuperset(want) {
		t.Errorf("GPU nodes (label %s=true) are %v, want at least %v: is the test cluster's topology changed?", gpuNodeLabel, sets.List(gpu), sets.List(want))
	}
	dss, err := e.kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dss.Items {
		live.Insert("DaemonSet/" + d.Name)
		st := d.Status
		if st.DesiredNumberScheduled == 0 || st.NumberReady != st.DesiredNumberScheduled {
			t.Errorf("DaemonSet %s: %d ready of %d desired", d.Name, st.NumberReady, st.DesiredNumberScheduled)
		}
		if d.Spec.Template.Spec.NodeSelector[gpuNodeLabel] != "true" {
			continue
		}
		// Nodes may come and go (other tests add nodes), so compare pod placement, not counts.
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			t.Fatal(err)
		}
		on := sets.New[string]()
		for _, p := range pods.Items {
			on.Insert(p.Spec.NodeName)
			if !gpu.Has(p.Spec.NodeName) {
				t.Errorf("DaemonSet %s: pod %s runs on %q, which is not a GPU node", d.Name, p.Name, p.Spec.NodeName)
			}
			if !podReady(&p) {
				t.Errorf("DaemonSet %s: pod %s on %s is not Ready (%s)", d.Name, p.Name, p.Spec.NodeName, p.Status.Phase)
			}
		}
		for _, n := range []string{"k8s-g1", "k8s-g2", "k8s-g3", "k8s-g11"} {
			if !on.Has(n) {
				t.Errorf("DaemonSet %s has no pod on GPU node %s (pods on %v)", d.Name, n, sets.List(on))
			}
		}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group != "apps" || (gvk.Kind != "Deployment" && gvk.Kind != "StatefulSet" && gvk.Kind != "DaemonSet") {
			continue
		}
		if !live.Has(gvk.Kind + "/" + o.GetName()) {
			t.Errorf("%s %s of the manifests is not in namespace %s", gvk.Kind, o.GetName(), ns)
		}
	}
	t.Logf("workloads ready: %v", sets.List(live))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkCRDsEstablished: every CRD of the app is Established and a member of the app's
// ApplySet (the planted leftover included: apply adopted it).
func (e *env) checkCRDsEstablished(t *testing.T, ctx context.Context, crds []*unstructured.Unstructured, setID, leftover string) {
	t.Helper()
	for _, crd := range crds {
		live, err := e.dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("CRD %s: %v", crd.GetName(), err)
			continue
		}
		if !conditionTrue(live, "Established") {
			t.Errorf("CRD %s is not Established", crd.GetName())
		}
		if got := live.GetLabels()[labelPartOf]; got != setID {
			what := ""
			if crd.GetName() == leftover {
				what = " (the planted leftover was not adopted)"
			}
			t.Errorf("CRD %s: label %s=%q, want the app's %q%s", crd.GetName(), labelPartOf, got, setID, what)
		}
	}
}

func conditionTrue(o *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == condType {
			return m["status"] == "True"
		}
	}
	return false
}

// checkClaimsBound: every PVC of the namespace is Bound, to the PV the test made for it.
func (e *env) checkClaimsBound(t *testing.T, ctx context.Context, ns string, pvNames map[string]string) {
	t.Helper()
	pvcs, err := e.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := sets.New[string]()
	for _, pvc := range pvcs.Items {
		seen.Insert(pvc.Name)
		if pvc.Status.Phase != corev1.ClaimBound {
			t.Errorf("PVC %s is %s, want Bound", pvc.Name, pvc.Status.Phase)
		}
		if want, ok := pvNames[pvc.Name]; !ok {
			t.Errorf("PVC %s is not one of the manifests' claims %v", pvc.Name, sets.List(sets.KeySet(pvNames)))
		} else if pvc.Spec.VolumeName != want {
			t.Errorf("PVC %s is bound to %q, want %s", pvc.Name, pvc.Spec.VolumeName, want)
		}
	}
	for claim := range pvNames {
		if !seen.Has(claim) {
			t.Errorf("PVC %s of the manifests is not in namespace %s", claim, ns)
		}
	}
}

var rejectedAtRE = regexp.MustCompile(`(?m)^#\s*rejected-at:\s*(\S+)\s*$`)

// checkSamples dry-runs (server side, create) each sample custom resource in the namespace:
// *-valid.yaml must be accepted, *-invalid.yaml rejected as Invalid at its "# rejected-at:"
// field. The samples must include a TFJob, an Experiment and a Workflow, valid and invalid.
func (e *env) checkSamples(t *testing.T, ctx context.Context, ns string, crds []*unstructured.Unstructured) {
	t.Helper()
	plural := map[schema.GroupKind]string{}
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		p, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		plural[schema.GroupKind{Group: group, Kind: kind}] = p
	}
	files, err := filepath.Glob(filepath.Join(fullSamplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	covered := sets.New[string]()
	for _, f := range files {
		base := filepath.Base(f)
		valid := strings.HasSuffix(base, "-valid.yaml")
		if !valid && !strings.HasSuffix(base, "-invalid.yaml") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Decode(f, data)
		if err != nil {
			t.Fatal(err)
		}
		rejectedAt := ""
		if m := rejectedAtRE.FindSubmatch(data); m != nil {
			rejectedAt = string(m[1])
		}
		if !valid && rejectedAt == "" {
			t.Errorf("%s: an invalid sample needs a '# rejected-at: FIELD' comment", base)
			continue
		}
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			res, ok := plural[gvk.GroupKind()]
			if !ok {
				t.Errorf("%s: %s is not a kind of the app's CRDs", base, gvk.GroupKind())
				continue
			}
			gvr := gvk.GroupVersion().WithResource(res)
			o.SetNamespace(ns)
			_, err := e.dyn.Resource(gvr).Namespace(ns).Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case valid && err != nil:
				t.Errorf("%s: server-side dry run of %s %s rejected: %v", base, gvk.Kind, o.GetName(), err)
			case valid:
				covered.Insert(gvk.Kind + " valid")
				t.Logf("%s: %s %s accepted (dry run)", base, gvk.Kind, o.GetName())
			case err == nil:
				t.Errorf("%s: server-side dry run of %s %s accepted, want rejected at %s", base, gvk.Kind, o.GetName(), rejectedAt)
			case !apierrors.IsInvalid(err):
				t.Errorf("%s: %s %s rejected, but not as Invalid: %v", base, gvk.Kind, o.GetName(), err)
			case !rejectsField(err, rejectedAt):
				t.Errorf("%s: %s %s rejected, but not at %s: %v", base, gvk.Kind, o.GetName(), rejectedAt, err)
			default:
				covered.Insert(gvk.Kind + " invalid")
				t.Logf("%s: %s %s rejected as expected: %v", base, gvk.Kind, o.GetName(), err)
			}
		}
	}
	for _, kind := range []string{"TFJob", "Experiment", "Workflow"} {
		for _, v := range []string{"valid", "invalid"} {
			if !covered.Has(kind + " " + v) {
				t.Errorf("no %s %s sample was checked in %s", v, kind, fullSamplesDir)
			}
		}
	}
}

// rejectsField: the Invalid error names the field, as a cause or in its message.
func rejectsField(err error, field string) bool {
	var status *apierrors.StatusError
	if errors.As(err, &status) && status.ErrStatus.Details != nil {
		for _, c := range status.ErrStatus.Details.Causes {
			if c.Field == field {
				return true
			}
		}
	}
	return strings.Contains(err.Error(), field)
}

// checkClusterScopedGone: after delete --purge, the app's cluster-scoped objects are gone.
// Objects named for the namespace (ClusterRoles "<ns>-...") must be gone; objects with a
// cluster-wide name (CRDs, Katib's webhook configurations) are shared with other apps on the
// cluster, so one that another app has applied since counts too (it carries that app's
// ApplySet label).
func (e *env) checkClusterScopedGone(t *testing.T, ns string, objs []*unstructured.Unstructured, setID string) {
	t.Helper()
	groups, err := restmapper.GetAPIGroupResources(e.kube.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	checked := map[string]int{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("map %s: %v", gvk, err)
			continue
		}
		if m.Scope.Name() != meta.RESTScopeNameRoot || gvk.Kind == "Namespace" {
			continue
		}
		name := o.GetName()
		shared := !strings.HasPrefix(name, ns+"-")
		checked[gvk.Kind]++
		eventually(t, 2*time.Minute, fmt.Sprintf("%s %s deleted", gvk.Kind, name), func(ctx context.Context) (bool, error) {
			live, err := e.dyn.Resource(m.Resource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return isGone(err)
			}
			if owner := live.GetLabels()[labelPartOf]; shared && owner != setID && owner != "" {
				t.Logf("%s %s was applied again since, by ApplySet %s: not ours any more", gvk.Kind, name, owner)
				return true, nil
			}
			return false, nil
		})
	}
	if checked["CustomResourceDefinition"] == 0 || checked["ClusterRole"] == 0 {
		t.Errorf("checked cluster-scoped objects %v: want CRDs and ClusterRoles among them", checked)
	}
	t.Logf("cluster-scoped objects gone: %v", checked)
}

// logNotReady logs what is not ready in the namespace: pods and warning events.
func (e *env) logNotReady(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			if !podReady(&p) {
				t.Logf("pod %s on %q: %s %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
			}
		}
	}
	events, err := e.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err == nil {
		for _, ev := range events.Items {
			t.Logf("event %s/%s: %s: %s", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	pvcs, err := e.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, c := range pvcs.Items {
			t.Logf("PVC %s: %s %q", c.Name, c.Status.Phase, c.Spec.VolumeName)
		}
	}
}
