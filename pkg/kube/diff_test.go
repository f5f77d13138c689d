package kube

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

func secret(data map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"}, "data": data}
}

func TestRedactSecretPairShowsChangesNotValues(t *testing.T) {
	before := secret(map[string]any{"same": "c2FtZQ==", "changed": "b2xk", "removed": "Z29uZQ=="})
	after := secret(map[string]any{"same": "c2FtZQ==", "changed": "bmV3", "added": "YWRk"})
	redactSecretPair(before, after)
	text := unified("ns/Secret/db", "ns/Secret/db", before, after)
	for _, value := range []string{"c2FtZQ==", "b2xk", "bmV3", "Z29uZQ==", "YWRk"} {
		if strings.Contains(text, value) {
			t.Errorf("diff shows the secret value %s:\n%s", value, text)
		}
	}
	for _, want := range []string{"-  changed: '*** (before)'", "+  changed: '*** (after)'", "+  added: '***'", "-  removed: '***'"} {
		if !strings.Contains(text, want) {
			t.Errorf("diff lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "+  same") || strings.Contains(text, "-  same") {
		t.Errorf("an unchanged key appears as a change:\n%s", text)
	}
}

func TestCleanForDiffDropsServerFields(t *testing.T) {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "a", "resourceVersion": "7", "uid": "u", "generation": int64(2),
			"managedFields": []any{map[string]any{"manager": "x"}}}, "status": map[string]any{"x": "y"}, "data": map[string]any{"k": "v"}}}
	c := cleanForDiff(o)
	if got := unified("a", "a", c, cleanForDiff(o)); got != "" {
		t.Errorf("equal objects give a diff:\n%s", got)
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
