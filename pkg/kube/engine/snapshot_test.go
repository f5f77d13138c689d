package engine

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// TestSnapshotReadsOnce: two plans of the same snapshot (preflight's, then apply's) make one
// list of each resource and namespace, and one read of the inventory; the members are the
// objects with the set's label only (the snapshot's own reads are tested in pkg/kube/snapshot).
func TestSnapshotReadsOnce(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ml"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	c := &kube.Client{Mapper: kubetest.ResettableMapper{DefaultRESTMapper: m}}
	parent := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: s.ParentName(),
		Labels: map[string]string{inventory.LabelApplySetID: s.ID()}, Annotations: map[string]string{inventory.AnnotationGroupKinds: "ConfigMap"}}}
	typed := fake.NewClientset(parent, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}})
	c.Typed, c.Fast = typed, typed
	md := kubetest.Metadata(t,
		kubetest.ConfigMapMeta("ml", "mine", map[string]string{inventory.LabelPartOf: s.ID()}),
		kubetest.ConfigMapMeta("ml", "stale", map[string]string{inventory.LabelPartOf: s.ID()}),
		kubetest.ConfigMapMeta("ml", "theirs", map[string]string{inventory.LabelApp: "other"}))
	c.Metadata = md
	objs := []*unstructured.Unstructured{kubetest.Object("v1", "ConfigMap", "ml", "mine", nil), kubetest.Object("v1", "ConfigMap", "ml", "theirs", nil)}
	snap := NewSnapshot(c, s, objs, snapshot.Options{})
	ctx := context.Background()

	for range 2 {
		plan, err := snap.Plan(ctx, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Prune) != 1 || plan.Prune[0].ID.Name != "stale" {
			t.Errorf("prune steps %v, want the one stale member (not the object of another owner)", plan.Prune)
		}
	}
	// The cluster's inventories (secrets in every namespace) are listed once too, for sharing.
	if got := kubetest.CountLists(md.Actions()); len(got) != 2 || got["configmaps/ml"] != 1 || got["secrets/"] != 1 {
		t.Errorf("metadata lists %v, want configmaps in ml and the cluster's inventories once each", got)
	}
	gets := 0
	for _, a := range typed.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d typed gets, want one (the inventory)", gets)
	}
}

// TestWaitTargetsSkipsWhatIsKnownReady: the wait reads only what is not known ready: an
// unchanged object the whole snapshot saw Current is skipped, an unchanged one it saw in
// progress or saw only as metadata is read, and so is a written one whose apply response was
// not Current; a written one whose response was Current is skipped.
func TestWaitTargetsSkipsWhatIsKnownReady(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	deployment := func(name string, observed int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": name, "namespace": "ml", "generation": int64(2)},
			"spec":     map[string]any{"replicas": int64(1)},
			"status": map[string]any{"observedGeneration": observed, "replicas": int64(1), "updatedReplicas": int64(1),
				"readyReplicas": int64(1), "availableReplicas": int64(1),
				"conditions": []any{map[string]any{"type": "Available", "status": "True"}}}}}
	}
	// The snapshot of a run that waits read the live deployments whole, as the plan's own list.
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "DeploymentList"},
		deployment("ready", 2), deployment("rolling", 1))
	set := inventory.ApplySet{App: "app", Namespace: "ml"}
	snap := NewSnapshot(&kube.Client{Dynamic: dyn}, set, nil, snapshot.Options{Status: true})
	if _, err := snap.List(context.Background(), gvr, "ml"); err != nil {
		t.Fatal(err)
	}

	step := func(name string, change Change) Step {
		id := manifest.ID{Group: "apps", Kind: "Deployment", Namespace: "ml", Name: name}
		return Step{ID: id, Change: change, target: planned{id: id, obj: deployment(name, 2), mapping: restMapping(gvr)}}
	}
	// An object another app owns and this one shares is not sent, and not a member of this
	// set: its owner waits for it, this apply does not.
	shared := step("shared", ChangeNone)
	shared.sharedWith = inventory.AppRef{App: "other", Namespace: "x1"}
	plan := &Plan{}
	plan.Levels[0] = []Step{step("ready", ChangeNone), step("rolling", ChangeNone),
		step("written", ChangeUpdate), step("written-ready", ChangeUpdate), shared}
	res := &Result{}
	res.noteApplied(plan.Levels[0][2].ID, deployment("written", 1))
	res.noteApplied(plan.Levels[0][3].ID, deployment("written-ready", 2))

	pending, ready := waitTargets(snap, plan, res)
	var names []string
	for _, p := range pending {
		names = append(names, p.ID.Name)
	}
	if ready != 2 || len(names) != 2 || names[0] != "rolling" || names[1] != "written" {
		t.Errorf("wait reads %v (%d known ready), want rolling, written (2 known ready, the shared one left to its owner)", names, ready)
	}

	// A snapshot that read metadata only (a run that does not wait) proves nothing: the same
	// unchanged, Current deployment is read by the wait.
	md := kubetest.Metadata(t, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "ready", Generation: 2}})
	metaOnly := NewSnapshot(&kube.Client{Metadata: md}, set, nil, snapshot.Options{})
	if _, err := metaOnly.List(context.Background(), gvr, "ml"); err != nil {
		t.Fatal(err)
	}
	plan.Levels[0] = []Step{step("ready", ChangeNone)}
	if pending, ready := waitTargets(metaOnly, plan, &Result{}); ready != 0 || len(pending) != 1 || pending[0].ID.Name != "ready" {
		t.Errorf("metadata-only snapshot: wait reads %v (%d known ready), want the deployment read", pending, ready)
	}
}

func restMapping(gvr schema.GroupVersionResource) *meta.RESTMapping {
	return &meta.RESTMapping{Resource: gvr, Scope: meta.RESTScopeNamespace}
}
