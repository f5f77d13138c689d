package engine

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

func TestPrepareFindsDuplicatesAfterNamespaceDefaulting(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ml"}
	_, err := client{kubetest.OfflineClient()}.prepare(s, []*unstructured.Unstructured{
		kubetest.Object("v1", "ConfigMap", "ml", "settings", nil),
		kubetest.Object("v1", "ConfigMap", "", "settings", nil),
	})
	if err == nil || !strings.Contains(err.Error(), "ml/ConfigMap/settings") {
		t.Fatalf("prepare = %v, want the duplicate ml/ConfigMap/settings named", err)
	}
}

func TestPrepareScopesLabelsAndHashes(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ml"}
	crd := kubetest.Object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com", map[string]any{
		"spec": map[string]any{"group": "example.com", "scope": "Namespaced", "names": map[string]any{"kind": "Widget", "plural": "widgets"}}})
	d, err := client{kubetest.OfflineClient()}.prepare(s, []*unstructured.Unstructured{
		kubetest.Object("example.com/v1", "Widget", "", "w", nil),
		kubetest.Object("v1", "ConfigMap", "", "settings", nil),
		crd,
		kubetest.Object("v1", "Namespace", "", "ml", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.namespaces) != 1 || d.namespaces[0].id.Name != "ml" {
		t.Errorf("namespaces %v, want ml alone", d.namespaces)
	}
	widget := d.levels[manifest.LevelCustom]
	if len(widget) != 1 || widget[0].id.Namespace != "ml" || widget[0].mapping != nil {
		t.Fatalf("custom resource %+v: want it in ml (its CRD is namespaced), mapped only once the CRD is installed", widget)
	}
	cm := d.levels[manifest.LevelConfig][0]
	if cm.obj.GetNamespace() != "ml" || cm.obj.GetLabels()[inventory.LabelPartOf] != s.ID() {
		t.Errorf("ConfigMap not defaulted to the app's namespace or not labelled: %v", cm.obj.Object["metadata"])
	}
	if cm.hash == "" || cm.obj.GetAnnotations()[AnnotationAppliedHash] != cm.hash {
		t.Errorf("ConfigMap does not carry its hash: %q vs %v", cm.hash, cm.obj.GetAnnotations())
	}
	if want, _ := contentHash(cm.obj); want != cm.hash {
		t.Errorf("stamped hash %q is not the hash of what is sent %q", cm.hash, want)
	}
}
