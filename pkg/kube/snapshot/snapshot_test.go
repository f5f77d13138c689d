package snapshot

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// TestReadsOnce: the members, an object looked up by name, namespaces that exist or not and the
// inventory, each asked for twice, cost one list per resource and namespace and one read of
// the inventory; the members are the objects with the set's label only.
func TestReadsOnce(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ml"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	parent := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: s.ParentName(),
		Labels: map[string]string{inventory.LabelApplySetID: s.ID()}, Annotations: map[string]string{inventory.AnnotationGroupKinds: "ConfigMap"}}}
	typed := fake.NewClientset(parent, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}})
	md := kubetest.Metadata(t,
		kubetest.ConfigMapMeta("ml", "mine", map[string]string{inventory.LabelPartOf: s.ID()}),
		kubetest.ConfigMapMeta("ml", "theirs", map[string]string{inventory.LabelApp: "other"}))
	snap := New(&kube.Client{Mapper: kubetest.ResettableMapper{DefaultRESTMapper: m}, Typed: typed, Fast: typed, Metadata: md}, s, Options{})
	ctx := context.Background()

	for range 2 {
		inv, err := snap.Inventory(ctx)
		if err != nil || !inv.Exists {
			t.Fatalf("inventory: %+v, %v", inv, err)
		}
		members, err := snap.Members(ctx, inv.GroupKinds, inv.Namespaces)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) != 1 {
			t.Errorf("members %v, want the one ConfigMap with the set's label", members)
		}
		theirs, err := snap.Get(ctx, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ml", "theirs")
		if err != nil || theirs == nil || theirs.Meta.Labels[inventory.LabelApp] != "other" {
			t.Errorf("lookup of an object another owner holds: %+v, %v", theirs, err)
		}
		if ns, err := snap.Namespace(ctx, "ml"); err != nil || ns == nil {
			t.Errorf("namespace ml: %v, %v", ns, err)
		}
		if ns, err := snap.Namespace(ctx, "gone"); err != nil || ns != nil {
			t.Errorf("a namespace that does not exist: %v, %v", ns, err)
		}
	}
	if got := kubetest.CountLists(md.Actions()); len(got) != 1 || got["configmaps/ml"] != 1 {
		t.Errorf("metadata lists %v, want configmaps in ml once", got)
	}
	gets := 0
	for _, a := range typed.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if got := kubetest.CountLists(typed.Actions()); len(got) != 1 || got["namespaces/"] != 1 || gets != 1 {
		t.Errorf("typed lists %v and %d gets, want the namespaces listed once and one get (the inventory)", got, gets)
	}
	// Forget drops a list: the next use reads it again.
	snap.Forget(schema.GroupResource{Resource: "configmaps"})
	if _, err := snap.List(ctx, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ml"); err != nil {
		t.Fatal(err)
	}
	if got := kubetest.CountLists(md.Actions()); got["configmaps/ml"] != 2 {
		t.Errorf("metadata lists %v after Forget, want configmaps in ml read again", got)
	}
}
