package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

type resettableMapper struct{ *meta.DefaultRESTMapper }

func (resettableMapper) Reset() {}

// offlineClient maps a few built-in kinds without a cluster.
func offlineClient() *Client {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	return &Client{Mapper: resettableMapper{m}}
}

func obj(apiVersion, kind, ns, name string, extra map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if ns != "" {
		md["namespace"] = ns
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": md}
	for k, v := range extra {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func TestPrepareFindsDuplicatesAfterNamespaceDefaulting(t *testing.T) {
	s := ApplySet{App: "app", Namespace: "ml"}
	_, err := offlineClient().prepare(s, []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "ml", "settings", nil),
		obj("v1", "ConfigMap", "", "settings", nil),
	})
	if err == nil || !strings.Contains(err.Error(), "ml/ConfigMap/settings") {
		t.Fatalf("prepare = %v, want the duplicate ml/ConfigMap/settings named", err)
	}
}

func TestPrepareScopesLabelsAndHashes(t *testing.T) {
	s := ApplySet{App: "app", Namespace: "ml"}
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com", map[string]any{
		"spec": map[string]any{"group": "example.com", "scope": "Namespaced", "names": map[string]any{"kind": "Widget", "plural": "widgets"}}})
	d, err := offlineClient().prepare(s, []*unstructured.Unstructured{
		obj("example.com/v1", "Widget", "", "w", nil),
		obj("v1", "ConfigMap", "", "settings", nil),
		crd,
		obj("v1", "Namespace", "", "ml", nil),
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
	if cm.obj.GetNamespace() != "ml" || cm.obj.GetLabels()[LabelPartOf] != s.ID() {
		t.Errorf("ConfigMap not defaulted to the app's namespace or not labelled: %v", cm.obj.Object["metadata"])
	}
	if cm.hash == "" || cm.obj.GetAnnotations()[AnnotationAppliedHash] != cm.hash {
		t.Errorf("ConfigMap does not carry its hash: %q vs %v", cm.hash, cm.obj.GetAnnotations())
	}
	if want, _ := contentHash(cm.obj); want != cm.hash {
		t.Errorf("stamped hash %q is not the hash of what is sent %q", cm.hash, want)
	}
}
