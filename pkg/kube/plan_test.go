package kube

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

func configMap(name string, data map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "ns"}, "data": data}}
}

func TestContentHashIgnoresItsOwnAnnotation(t *testing.T) {
	a := configMap("a", map[string]any{"k": "v"})
	before, err := contentHash(a)
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := stampHash(a)
	if err != nil {
		t.Fatal(err)
	}
	if stamped != before || a.GetAnnotations()[AnnotationAppliedHash] != before {
		t.Fatalf("stamp %q, annotation %q, want both %q", stamped, a.GetAnnotations()[AnnotationAppliedHash], before)
	}
	again, _ := contentHash(a)
	if again != before {
		t.Errorf("hash of the stamped object %q differs from the unstamped %q", again, before)
	}
	if _, ok := a.Object["metadata"].(map[string]any)["annotations"]; !ok {
		t.Error("stampHash did not set the annotation on the object that is sent")
	}
	changed, _ := contentHash(configMap("a", map[string]any{"k": "w"}))
	if changed == before {
		t.Error("different data, same hash")
	}
	otherAnn := configMap("a", map[string]any{"k": "v"})
	otherAnn.SetAnnotations(map[string]string{"x": "y"})
	if h, _ := contentHash(otherAnn); h == before {
		t.Error("another annotation does not change the hash")
	}
}

func TestDecide(t *testing.T) {
	const hash = "sha256:abc"
	at := func(sec int) *metav1.Time {
		t := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, sec, 0, time.UTC))
		return &t
	}
	ours := func(sec int) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: at(sec)}
	}
	other := func(manager string, op metav1.ManagedFieldsOperationType, sub string, sec int) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, Time: at(sec)}
	}
	live := func(h string, fields ...metav1.ManagedFieldsEntry) *metav1.ObjectMeta {
		m := &metav1.ObjectMeta{ManagedFields: fields}
		if h != "" {
			m.Annotations = map[string]string{AnnotationAppliedHash: h}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		live    *metav1.ObjectMeta
		sendAll bool
		want    Change
		reason  string
	}{
		{"missing object is created", nil, false, ChangeCreate, "not in the cluster"},
		{"same hash, only our entry", live(hash, ours(10)), false, ChangeNone, "unchanged"},
		{"send-all sends an unchanged object", live(hash, ours(10)), true, ChangeUpdate, "--skip-unchanged=false"},
		{"content changed", live("sha256:old", ours(10)), false, ChangeUpdate, "content differs"},
		{"no hash annotation", live("", ours(10)), false, ChangeUpdate, "no kfdeploy.dev/applied-hash"},
		{"no kfdeploy entry", live(hash, other("kubectl", metav1.ManagedFieldsOperationApply, "", 5)), false, ChangeUpdate, "no kfdeploy apply entry"},
		{"our entry without time", live(hash, metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply}), false, ChangeUpdate, "no kfdeploy apply entry"},
		{"our Update entry is not our apply", live(hash, metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: at(10)}), false, ChangeUpdate, "no kfdeploy apply entry"},
		{"kubectl edit after our apply", live(hash, ours(10), other("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", 11)), false, ChangeUpdate, `"kubectl-edit"`},
		{"write in the same second is a change", live(hash, ours(10), other("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", 10)), false, ChangeUpdate, "kubectl-edit"},
		{"kubectl scale counts", live(hash, ours(10), other("kubectl", metav1.ManagedFieldsOperationUpdate, "scale", 12)), false, ChangeUpdate, "subresource scale"},
		{"status writes do not count", live(hash, ours(10), other("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "status", 30)), false, ChangeNone, "unchanged"},
		{"an earlier writer does not count", live(hash, other("kubectl-create", metav1.ManagedFieldsOperationUpdate, "", 3), ours(10)), false, ChangeNone, "unchanged"},
		{"another applier after us", live(hash, ours(10), other("helm", metav1.ManagedFieldsOperationApply, "", 20)), false, ChangeUpdate, `"helm"`},
		{"another entry without time", live(hash, ours(10), metav1.ManagedFieldsEntry{Manager: "x", Operation: metav1.ManagedFieldsOperationUpdate}), false, ChangeUpdate, "unknown time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := decide(hash, tc.live, tc.sendAll)
			if got != tc.want || !strings.Contains(reason, tc.reason) {
				t.Errorf("decide = %s (%s), want %s (%s)", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestPlanStepsAndPrune(t *testing.T) {
	groups := map[string]string{"Deployment": "apps", "CustomResourceDefinition": "apiextensions.k8s.io"}
	id := func(kind, name string) manifest.ID {
		if kind == "CustomResourceDefinition" {
			return manifest.ID{Group: groups[kind], Kind: kind, Name: name}
		}
		return manifest.ID{Group: groups[kind], Kind: kind, Namespace: "ns", Name: name}
	}
	target := func(name, hash string) planned {
		return planned{id: id("ConfigMap", name), hash: hash, obj: configMap(name, nil)}
	}
	mine := metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: &metav1.Time{Time: time.Unix(100, 0)}}
	liveMember := func(kind, name, hash string, ann map[string]string) member {
		a := map[string]string{AnnotationAppliedHash: hash}
		for k, v := range ann {
			a[k] = v
		}
		return member{id: id(kind, name), meta: metav1.ObjectMeta{Name: name, ResourceVersion: "42", Annotations: a, ManagedFields: []metav1.ManagedFieldsEntry{mine}}}
	}
	live := map[manifest.ID]member{
		id("ConfigMap", "same"):                 liveMember("ConfigMap", "same", "h1", nil),
		id("ConfigMap", "changed"):              liveMember("ConfigMap", "changed", "old", nil),
		id("ConfigMap", "gone"):                 liveMember("ConfigMap", "gone", "h", nil),
		id("PersistentVolumeClaim", "data"):     liveMember("PersistentVolumeClaim", "data", "h", nil),
		id("Secret", "kept"):                    liveMember("Secret", "kept", "h", map[string]string{AnnotationKeepOnDelete: "true"}),
		id("Deployment", "old-workload"):        liveMember("Deployment", "old-workload", "h", nil),
		id("ServiceAccount", "old-sa"):          liveMember("ServiceAccount", "old-sa", "h", nil),
		id("CustomResourceDefinition", "x.y.z"): liveMember("CustomResourceDefinition", "x.y.z", "h", nil),
	}
	targets := []planned{target("same", "h1"), target("changed", "h2"), target("new", "h3")}
	steps := planSteps(targets, live, false)
	want := map[string]Change{"same": ChangeNone, "changed": ChangeUpdate, "new": ChangeCreate}
	for _, st := range steps {
		if st.Change != want[st.ID.Name] {
			t.Errorf("%s: %s (%s), want %s", st.ID, st.Change, st.Reason, want[st.ID.Name])
		}
		if st.ID.Name == "changed" && st.liveRV != "42" {
			t.Errorf("%s: live resourceVersion %q not carried to the executor", st.ID, st.liveRV)
		}
	}

	desired := sets.New(targets[0].id, targets[1].id, targets[2].id)
	prune := planPrune(live, desired, true, nil)
	var order []string
	got := map[string]Change{}
	for _, st := range prune {
		order = append(order, st.ID.Name)
		got[st.ID.Name] = st.Change
		if st.Reason == "" {
			t.Errorf("%s: no reason", st.ID)
		}
	}
	wantPrune := map[string]Change{"gone": ChangePrune, "data": ChangeKeep, "kept": ChangeKeep, "old-workload": ChangePrune, "old-sa": ChangePrune, "x.y.z": ChangePrune}
	if len(got) != len(wantPrune) {
		t.Fatalf("prune steps %v, want %v", got, wantPrune)
	}
	for name, ch := range wantPrune {
		if got[name] != ch {
			t.Errorf("%s: %s, want %s", name, got[name], ch)
		}
	}
	// Deletion order: workloads before configuration before CRDs (the reverse of apply).
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	if !(pos["old-workload"] < pos["old-sa"] && pos["old-sa"] < pos["x.y.z"]) {
		t.Errorf("prune order %v: want the workload, then the ServiceAccount, then the CRD", order)
	}
}

func TestPlanCountsAndOrder(t *testing.T) {
	p := Plan{
		Namespaces: []Step{{ID: manifest.ID{Kind: "Namespace", Name: "ns"}, Change: ChangeNone}},
		Prune:      []Step{{ID: manifest.ID{Kind: "ConfigMap", Name: "old"}, Change: ChangePrune}},
	}
	p.Levels[manifest.LevelConfig] = []Step{{ID: manifest.ID{Kind: "ConfigMap", Name: "a"}, Change: ChangeCreate}, {ID: manifest.ID{Kind: "ConfigMap", Name: "b"}, Change: ChangeNone}}
	counts := p.Counts()
	if counts[ChangeNone] != 2 || counts[ChangeCreate] != 1 || counts[ChangePrune] != 1 {
		t.Errorf("counts %v", counts)
	}
	steps := p.Steps()
	if steps[0].ID.Kind != "Namespace" || steps[len(steps)-1].ID.Name != "old" {
		t.Errorf("steps not in execution order: %v", steps)
	}
}

func TestDuplicatesAfterNamespaceDefaulting(t *testing.T) {
	explicit := manifest.ID{Kind: "ConfigMap", Namespace: "kubeflow", Name: "c"}
	defaulted := manifest.ID{Kind: "ConfigMap", Namespace: "", Name: "c"}.Scoped(true, "kubeflow")
	err := duplicates([]planned{{id: explicit}, {id: defaulted}, {id: manifest.ID{Kind: "ConfigMap", Namespace: "kubeflow", Name: "d"}}})
	if err == nil || !strings.Contains(err.Error(), "kubeflow/ConfigMap/c") {
		t.Fatalf("duplicates = %v, want an error naming kubeflow/ConfigMap/c", err)
	}
	if err := duplicates([]planned{{id: explicit}, {id: manifest.ID{Kind: "ConfigMap", Namespace: "other", Name: "c"}}}); err != nil {
		t.Errorf("same name in two namespaces reported as duplicate: %v", err)
	}
}

func TestSameInventory(t *testing.T) {
	a := Inventory{Exists: true, Namespaces: []string{"ns", "b"}, GroupKinds: parseKinds("ConfigMap,Deployment.apps")}
	b := Inventory{Exists: true, Namespaces: []string{"b", "ns"}, GroupKinds: parseKinds("Deployment.apps,ConfigMap")}
	if !sameInventory(a, b) {
		t.Error("same contents in another order reported as different")
	}
	b.CreatedNamespaces = []string{"b"}
	if sameInventory(a, b) {
		t.Error("a new created namespace not seen")
	}
	if sameInventory(Inventory{}, Inventory{Exists: true}) {
		t.Error("a missing inventory must be written")
	}
}
