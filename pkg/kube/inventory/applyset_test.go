package inventory

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

var workflowsCRD = manifest.ID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "workflows.argoproj.io"}

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

func TestSameInventory(t *testing.T) {
	a := Record{Exists: true, Namespaces: []string{"ns", "b"}, GroupKinds: kube.ParseKinds("ConfigMap,Deployment.apps")}
	b := Record{Exists: true, Namespaces: []string{"b", "ns"}, GroupKinds: kube.ParseKinds("Deployment.apps,ConfigMap")}
	if !Same(a, b) {
		t.Error("same contents in another order reported as different")
	}
	b.CreatedNamespaces = []string{"b"}
	if Same(a, b) {
		t.Error("a new created namespace not seen")
	}
	b.CreatedNamespaces = nil
	b.AppliedFields = map[string]string{"ns/ConfigMap/a": "f"}
	if Same(a, b) {
		t.Error("a new record of applied fields not seen")
	}
	a.AppliedFields = map[string]string{"ns/ConfigMap/a": "f"}
	if !Same(a, b) {
		t.Error("the same record of applied fields reported as different")
	}
	if Same(Record{}, Record{Exists: true}) {
		t.Error("a missing inventory must be written")
	}
}

func TestSharedIDsRoundTrip(t *testing.T) {
	ids := []manifest.ID{workflowsCRD, {Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "tfjobs.kubeflow.org"}}
	got := parseIDs(formatIDs(ids))
	if len(got) != 2 || !sets.New(got...).HasAll(ids...) {
		t.Errorf("parseIDs(formatIDs(%v)) = %v", ids, got)
	}
}
