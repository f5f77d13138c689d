package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
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

// contentHash encodes o without copying it; the hash is that of a copy without the hash
// annotation (as kfdeploy has always computed it), and o is left as it was.
func TestContentHashIsThatOfTheObjectWithoutItsHashAnnotation(t *testing.T) {
	reference := func(o *unstructured.Unstructured) string {
		c := o.DeepCopy()
		if ann := c.GetAnnotations(); ann != nil {
			delete(ann, AnnotationAppliedHash)
			if len(ann) == 0 {
				ann = nil
			}
			c.SetAnnotations(ann)
		}
		data, err := json.Marshal(c.Object)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	cases := map[string]map[string]any{
		"no annotations":    nil,
		"empty annotations": {"annotations": map[string]any{}},
		"hash only":         {"annotations": map[string]any{AnnotationAppliedHash: "sha256:x"}},
		"hash and others":   {"annotations": map[string]any{AnnotationAppliedHash: "sha256:x", "a": "<b>&"}},
		"others only":       {"annotations": map[string]any{"a": "1"}},
	}
	for name, meta := range cases {
		o := kubetest.Object("v1", "ConfigMap", "ml", "settings", map[string]any{"data": map[string]any{"k": "v", "n": 1.5}})
		for k, v := range meta {
			o.Object["metadata"].(map[string]any)[k] = v
		}
		before := o.DeepCopy()
		got, err := contentHash(o)
		if err != nil {
			t.Fatal(err)
		}
		if want := reference(o); got != want {
			t.Errorf("%s: hash %s, want %s", name, got, want)
		}
		if !equality.Semantic.DeepEqual(before.Object, o.Object) {
			t.Errorf("%s: contentHash changed the object: %v", name, o.Object)
		}
	}
}

// A large app is hashed concurrently: every object carries its own hash, in order.
func TestPrepareHashesALargeAppConcurrently(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ml"}
	var objs []*unstructured.Unstructured
	for i := range 500 {
		objs = append(objs, kubetest.Object("v1", "ConfigMap", "", fmt.Sprintf("cm-%04d", i), map[string]any{"data": map[string]any{"i": fmt.Sprint(i)}}))
	}
	d, err := client{kubetest.OfflineClient()}.prepare(s, objs)
	if err != nil {
		t.Fatal(err)
	}
	cms := d.levels[manifest.LevelConfig]
	if len(cms) != len(objs) {
		t.Fatalf("%d ConfigMaps prepared, want %d", len(cms), len(objs))
	}
	for i, p := range cms {
		if want := fmt.Sprintf("cm-%04d", i); p.id.Name != want {
			t.Fatalf("object %d is %s, want %s", i, p.id.Name, want)
		}
		if want, _ := contentHash(p.obj); p.hash != want || p.obj.GetAnnotations()[AnnotationAppliedHash] != want {
			t.Fatalf("%s: hash %q, annotation %q, want %q", p.id, p.hash, p.obj.GetAnnotations()[AnnotationAppliedHash], want)
		}
	}
}
