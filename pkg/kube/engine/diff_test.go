package engine

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

func TestCleanForDiffDropsServerFields(t *testing.T) {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "a", "resourceVersion": "7", "uid": "u", "generation": int64(2),
			"managedFields": []any{map[string]any{"manager": "x"}}}, "status": map[string]any{"x": "y"}, "data": map[string]any{"k": "v"}}}
	c := cleanForDiff(o)
	if !equality.Semantic.DeepEqual(c, cleanForDiff(o)) {
		t.Errorf("cleaning the same object twice gives different objects:\n%v\n%v", c, cleanForDiff(o))
	}
	md := c["metadata"].(map[string]any)
	for _, f := range []string{"resourceVersion", "uid", "generation", "managedFields"} {
		if _, ok := md[f]; ok {
			t.Errorf("metadata.%s kept", f)
		}
	}
	if _, ok := c["status"]; ok {
		t.Error("status kept")
	}
	if o.GetResourceVersion() != "7" {
		t.Error("cleanForDiff modified its input")
	}
}

func TestKeepReason(t *testing.T) {
	pvc := inventory.Member{ID: manifest.ID{Kind: "PersistentVolumeClaim", Namespace: "ns", Name: "data"}}
	secretKept := inventory.Member{ID: manifest.ID{Kind: "Secret", Name: "pw"}, Meta: metav1.ObjectMeta{Annotations: map[string]string{inventory.AnnotationKeepOnDelete: "true"}}}
	cm := inventory.Member{ID: manifest.ID{Kind: "ConfigMap", Name: "c"}}
	if keepReason(pvc, false) == "" || keepReason(secretKept, false) == "" {
		t.Error("PVCs and keep-on-delete objects must be kept without --purge")
	}
	if keepReason(pvc, true) != "" || keepReason(secretKept, true) != "" {
		t.Error("--purge must delete PVCs and keep-on-delete objects")
	}
	if keepReason(cm, false) != "" {
		t.Error("a ConfigMap must not be kept")
	}
}
