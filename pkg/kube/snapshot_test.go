package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// countLists counts the list actions of a fake per resource and namespace.
func countLists(actions []k8stesting.Action) map[string]int {
	out := map[string]int{}
	for _, a := range actions {
		if a.GetVerb() == "list" {
			out[a.GetResource().Resource+"/"+a.GetNamespace()]++
		}
	}
	return out
}

// TestSnapshotReadsOnce: two plans of the same snapshot (preflight's, then apply's), the
// lookup of an object by name and of a namespace make one list of each resource and
// namespace, and one read of the inventory; the members are the objects with the set's label
// only, other objects of the same list are found by name too.
func TestSnapshotReadsOnce(t *testing.T) {
	s := ApplySet{App: "app", Namespace: "ml"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	c := &Client{Mapper: resettableMapper{m}}
	inventory := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: s.ParentName(),
		Labels: map[string]string{LabelApplySetID: s.ID()}, Annotations: map[string]string{AnnotationGroupKinds: "ConfigMap"}}}
	typed := fake.NewClientset(inventory, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}})
	c.Typed, c.Fast = typed, typed
	cm := func(name string, labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name, Labels: labels}}
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme,
		cm("mine", map[string]string{LabelPartOf: s.ID()}),
		cm("stale", map[string]string{LabelPartOf: s.ID()}),
		cm("theirs", map[string]string{LabelApp: "other"}))
	c.Metadata = md
	objs := []*unstructured.Unstructured{obj("v1", "ConfigMap", "ml", "mine", nil), obj("v1", "ConfigMap", "ml", "theirs", nil)}
	snap := c.NewSnapshot(s, objs, SnapshotOptions{})
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
	theirs, err := snap.Get(ctx, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ml", "theirs")
	if err != nil || theirs == nil || theirs.Meta.Labels[LabelApp] != "other" {
		t.Errorf("lookup of an object another owner holds: %+v, %v", theirs, err)
	}
	if ns, err := snap.Namespace(ctx, "ml"); err != nil || ns == nil {
		t.Errorf("namespace ml: %v, %v", ns, err)
	}
	if ns, err := snap.Namespace(ctx, "gone"); err != nil || ns != nil {
		t.Errorf("a namespace that does not exist: %v, %v", ns, err)
	}

	// The cluster's inventories (secrets in every namespace) are listed once too, for sharing.
	if got := countLists(md.Actions()); len(got) != 2 || got["configmaps/ml"] != 1 || got["secrets/"] != 1 {
		t.Errorf("metadata lists %v, want configmaps in ml and the cluster's inventories once each", got)
	}
	gets := 0
	for _, a := range typed.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if got := countLists(typed.Actions()); len(got) != 1 || got["namespaces/"] != 1 || gets != 1 {
		t.Errorf("typed lists %v and %d gets, want the namespaces listed once and one get (the inventory)", got, gets)
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
	c := &Client{}
	snap := c.NewSnapshot(ApplySet{App: "app", Namespace: "ml"}, nil, SnapshotOptions{Status: true})
	l := &listing{byName: map[string]*LiveObject{
		"ready":    {Object: deployment("ready", 2)},
		"rolling":  {Object: deployment("rolling", 1)},
		"metaonly": {},
	}}
	l.once.Do(func() {})
	l.read.Store(true)
	snap.lists[listKey{resource: gvr.GroupResource(), namespace: "ml"}] = l

	step := func(name string, change Change) Step {
		id := manifest.ID{Group: "apps", Kind: "Deployment", Namespace: "ml", Name: name}
		return Step{ID: id, Change: change, target: planned{id: id, obj: deployment(name, 2), mapping: restMapping(gvr)}}
	}
	// An object another app owns and this one shares is not sent, and not a member of this
	// set: its owner waits for it, this apply does not.
	shared := step("shared", ChangeNone)
	shared.sharedWith = AppRef{App: "other", Namespace: "x1"}
	plan := &Plan{}
	plan.Levels[0] = []Step{step("ready", ChangeNone), step("rolling", ChangeNone), step("metaonly", ChangeNone),
		step("written", ChangeUpdate), step("written-ready", ChangeUpdate), shared}
	res := &Result{}
	res.noteApplied(plan.Levels[0][3].ID, deployment("written", 1))
	res.noteApplied(plan.Levels[0][4].ID, deployment("written-ready", 2))

	pending, ready := c.waitTargets(snap, plan, res)
	var names []string
	for _, p := range pending {
		names = append(names, p.id.Name)
	}
	if ready != 2 || len(names) != 3 || names[0] != "rolling" || names[1] != "metaonly" || names[2] != "written" {
		t.Errorf("wait reads %v (%d known ready), want rolling, metaonly, written (2 known ready, the shared one left to its owner)", names, ready)
	}
}

func restMapping(gvr schema.GroupVersionResource) *meta.RESTMapping {
	return &meta.RESTMapping{Resource: gvr, Scope: meta.RESTScopeNamespace}
}
