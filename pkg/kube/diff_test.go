package kube

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	pvc := member{id: manifest.ID{Kind: "PersistentVolumeClaim", Namespace: "ns", Name: "data"}}
	secretKept := member{id: manifest.ID{Kind: "Secret", Name: "pw"}, meta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationKeepOnDelete: "true"}}}
	cm := member{id: manifest.ID{Kind: "ConfigMap", Name: "c"}}
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

func TestApplySetIDFormat(t *testing.T) {
	s := ApplySet{App: "myapp", Namespace: "kubeflow"}
	id := s.ID()
	if !strings.HasPrefix(id, "applyset-") || !strings.HasSuffix(id, "-v1") || len(id) != len("applyset-")+43+len("-v1") {
		t.Errorf("ID %q does not have the KEP-3659 form applyset-<base64url sha256>-v1", id)
	}
	if other := (ApplySet{App: "myapp", Namespace: "other"}).ID(); other == id {
		t.Error("the ID must depend on the namespace")
	}
	if len(id) > 63 {
		t.Errorf("ID %q is too long for a label value", id)
	}
}

// TestApplySetIDIsKubectls pins the ID to known values: kubectl's for its test parent (Secret
// my-set in namespace test, k8s.io/kubectl pkg/cmd/apply/apply_test.go), so that kubectl
// --applyset and kfdeploy agree on what a set is, and kfdeploy's own for an app, so that a
// change of the parent's name or kind, which would orphan every deployed app, cannot pass.
func TestApplySetIDIsKubectls(t *testing.T) {
	if got, want := applySetID("my-set", "test", "Secret", ""), "applyset-0eFHV8ySqp7XoShsGvyWFQD3s96yqwHmzc4e0HR1dsY-v1"; got != want {
		t.Errorf("applySetID(Secret test/my-set) = %s, want kubectl's %s", got, want)
	}
	if got, want := (ApplySet{App: "myapp", Namespace: "kubeflow"}).ID(), "applyset-bbRmjpFPdOMpHcJDh_y-vzDaGgxNZHsfByeoQln22aA-v1"; got != want {
		t.Errorf("ID of app myapp in kubeflow = %s, want %s", got, want)
	}
}
