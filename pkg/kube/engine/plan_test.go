package engine

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
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

// entry is a managedFields entry with the given field set (FieldsV1 JSON).
func entry(manager string, op metav1.ManagedFieldsOperationType, sub, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, APIVersion: "v1",
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields), Time: &metav1.Time{Time: time.Unix(100, 0)}}
}

const (
	// kfdeploy's fields on a ConfigMap it applied: the hash annotation, a label, one key.
	oursFields = `{"f:data":{".":{},"f:k":{}},"f:metadata":{"f:annotations":{".":{},"f:kfdeploy.dev/applied-hash":{}},"f:labels":{".":{},"f:app.kubernetes.io/component":{}}}}`
	// The same set as the API server may encode it: other key order, other spacing.
	oursReordered = `{"f:metadata": {"f:labels": {"f:app.kubernetes.io/component": {}, ".": {}}, "f:annotations": {".": {}, "f:kfdeploy.dev/applied-hash": {}}}, "f:data": {"f:k": {}, ".": {}}}`
	// After kubectl label ... app.kubernetes.io/component-: the label is gone from the set.
	oursLabelRemoved = `{"f:data":{".":{},"f:k":{}},"f:metadata":{"f:annotations":{".":{},"f:kfdeploy.dev/applied-hash":{}},"f:labels":{".":{}}}}`
)

func TestFieldsFingerprint(t *testing.T) {
	const hash = "sha256:abc"
	ours := entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursFields)
	base := fieldsFingerprint(hash, []metav1.ManagedFieldsEntry{ours})
	if base == "" {
		t.Fatal("no fingerprint for kfdeploy's apply entry")
	}
	for _, tc := range []struct {
		name   string
		hash   string
		fields []metav1.ManagedFieldsEntry
		same   bool
	}{
		{"the same set encoded otherwise", hash, []metav1.ManagedFieldsEntry{entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursReordered)}, true},
		{"other managers' entries do not count", hash, []metav1.ManagedFieldsEntry{
			entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "", `{"f:spec":{"f:volumeName":{}}}`), ours,
			entry("kubectl-rollout", metav1.ManagedFieldsOperationUpdate, "", `{"f:metadata":{"f:annotations":{"f:restartedAt":{}}}}`),
			entry(inventory.FieldManager, metav1.ManagedFieldsOperationUpdate, "status", `{"f:status":{}}`)}, true},
		{"a field removed from the set", hash, []metav1.ManagedFieldsEntry{entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursLabelRemoved)}, false},
		{"another content hash", "sha256:def", []metav1.ManagedFieldsEntry{ours}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldsFingerprint(tc.hash, tc.fields); (got == base) != tc.same {
				t.Errorf("fingerprint %q, base %q: same = %v, want %v", got, base, got == base, tc.same)
			}
		})
	}
	otherVersion := ours
	otherVersion.APIVersion = "v2"
	if fieldsFingerprint(hash, []metav1.ManagedFieldsEntry{otherVersion}) == base {
		t.Error("the entry's API version does not change the fingerprint")
	}
	for name, fields := range map[string][]metav1.ManagedFieldsEntry{
		"no entry":            nil,
		"only an Update":      {entry(inventory.FieldManager, metav1.ManagedFieldsOperationUpdate, "", oursFields)},
		"another applier":     {entry("helm", metav1.ManagedFieldsOperationApply, "", oursFields)},
		"a subresource":       {entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "status", oursFields)},
		"unreadable FieldsV1": {entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", `{"f:data":`)},
	} {
		if got := fieldsFingerprint(hash, fields); got != "" {
			t.Errorf("%s: fingerprint %q, want none", name, got)
		}
	}
}

func TestDecide(t *testing.T) {
	const hash = "sha256:abc"
	ours := entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursFields)
	recorded := fieldsFingerprint(hash, []metav1.ManagedFieldsEntry{ours})
	live := func(h string, fields ...metav1.ManagedFieldsEntry) *metav1.ObjectMeta {
		m := &metav1.ObjectMeta{ManagedFields: fields}
		if h != "" {
			m.Annotations = map[string]string{AnnotationAppliedHash: h}
		}
		return m
	}
	// Written by others after kfdeploy's apply, on fields kfdeploy does not own.
	bound := entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "", `{"f:spec":{"f:volumeName":{}}}`)
	restarted := entry("kubectl-rollout", metav1.ManagedFieldsOperationUpdate, "", `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:kubectl.kubernetes.io/restartedAt":{}}}}}}`)
	for _, tc := range []struct {
		name     string
		live     *metav1.ObjectMeta
		recorded string
		sendAll  bool
		want     Change
		reason   string
	}{
		{"missing object is created", nil, recorded, false, ChangeCreate, "not in the cluster"},
		{"same hash, same fields", live(hash, ours), recorded, false, ChangeNone, "unchanged"},
		{"send-all sends an unchanged object", live(hash, ours), recorded, true, ChangeUpdate, "--skip-unchanged=false"},
		{"content changed", live("sha256:old", ours), recorded, false, ChangeUpdate, "content differs"},
		{"no hash annotation", live("", ours), recorded, false, ChangeUpdate, "no kfdeploy.dev/applied-hash"},
		{"no kfdeploy entry", live(hash, entry("kubectl", metav1.ManagedFieldsOperationApply, "", oursFields)), recorded, false, ChangeUpdate, "no kfdeploy apply entry"},
		{"our Update entry is not our apply", live(hash, entry(inventory.FieldManager, metav1.ManagedFieldsOperationUpdate, "", oursFields)), recorded, false, ChangeUpdate, "no kfdeploy apply entry"},
		{"nothing recorded (an older kfdeploy applied it)", live(hash, ours), "", false, ChangeUpdate, "records no field set"},
		{"a label of ours removed", live(hash, entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursLabelRemoved)), recorded, false, ChangeUpdate, "changed or removed"},
		{"a field of ours taken by kubectl edit", live(hash, entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursLabelRemoved),
			entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/component":{}}}}`)), recorded, false, ChangeUpdate, "changed or removed"},
		{"recorded for other content", live(hash, ours), fieldsFingerprint("sha256:older", []metav1.ManagedFieldsEntry{ours}), false, ChangeUpdate, "changed or removed"},
		{"a claim bound after our apply", live(hash, ours, bound), recorded, false, ChangeNone, "unchanged"},
		{"a rollout restart after our apply", live(hash, ours, restarted), recorded, false, ChangeNone, "unchanged"},
		{"status writes do not count", live(hash, ours, entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "status", `{"f:status":{}}`)), recorded, false, ChangeNone, "unchanged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := decide(hash, tc.live, tc.recorded, tc.sendAll)
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
	mine := entry(inventory.FieldManager, metav1.ManagedFieldsOperationApply, "", oursFields)
	liveMember := func(kind, name, hash string, ann map[string]string) inventory.Member {
		a := map[string]string{AnnotationAppliedHash: hash}
		for k, v := range ann {
			a[k] = v
		}
		return inventory.Member{ID: id(kind, name), Meta: metav1.ObjectMeta{Name: name, ResourceVersion: "42", Annotations: a, ManagedFields: []metav1.ManagedFieldsEntry{mine}}}
	}
	live := map[manifest.ID]inventory.Member{
		id("ConfigMap", "same"):                 liveMember("ConfigMap", "same", "h1", nil),
		id("ConfigMap", "changed"):              liveMember("ConfigMap", "changed", "old", nil),
		id("ConfigMap", "gone"):                 liveMember("ConfigMap", "gone", "h", nil),
		id("PersistentVolumeClaim", "data"):     liveMember("PersistentVolumeClaim", "data", "h", nil),
		id("Secret", "kept"):                    liveMember("Secret", "kept", "h", map[string]string{inventory.AnnotationKeepOnDelete: "true"}),
		id("Deployment", "old-workload"):        liveMember("Deployment", "old-workload", "h", nil),
		id("ServiceAccount", "old-sa"):          liveMember("ServiceAccount", "old-sa", "h", nil),
		id("CustomResourceDefinition", "x.y.z"): liveMember("CustomResourceDefinition", "x.y.z", "h", nil),
	}
	targets := []planned{target("same", "h1"), target("changed", "h2"), target("new", "h3")}
	sameFields := fieldsFingerprint("h1", []metav1.ManagedFieldsEntry{mine})
	recorded := map[string]string{id("ConfigMap", "same").String(): sameFields}
	steps := planSteps(targets, live, recorded, false)
	want := map[string]Change{"same": ChangeNone, "changed": ChangeUpdate, "new": ChangeCreate}
	for _, st := range steps {
		if st.Change != want[st.ID.Name] {
			t.Errorf("%s: %s (%s), want %s", st.ID, st.Change, st.Reason, want[st.ID.Name])
		}
		if st.ID.Name == "changed" && st.liveRV != "42" {
			t.Errorf("%s: live resourceVersion %q not carried to the executor", st.ID, st.liveRV)
		}
		if st.ID.Name == "same" && st.fields != sameFields {
			t.Errorf("%s: unchanged, but its recorded fields %q are not carried to the next record", st.ID, st.fields)
		}
	}
	// Without the record, the same object is sent once.
	if st := planSteps(targets[:1], live, nil, false)[0]; st.Change != ChangeUpdate {
		t.Errorf("%s with no record: %s, want %s", st.ID, st.Change, ChangeUpdate)
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

// TestRecordedFields: after an apply, the inventory records the fingerprint of each object
// left unchanged (as recorded) or sent (from the server's response), and nothing for an
// object whose apply failed or was not reached, nor for one no longer in the app.
func TestRecordedFields(t *testing.T) {
	id := func(name string) manifest.ID { return manifest.ID{Kind: "ConfigMap", Namespace: "ns", Name: name} }
	p := Plan{
		Namespaces: []Step{{ID: manifest.ID{Kind: "Namespace", Name: "ns"}, Change: ChangeUpdate}},
		Prune:      []Step{{ID: id("old"), Change: ChangePrune}, {ID: id("kept"), Change: ChangeKeep}},
	}
	p.Levels[manifest.LevelConfig] = []Step{
		{ID: id("same"), Change: ChangeNone, fields: "f-same"},
		{ID: id("sent"), Change: ChangeUpdate},
		{ID: id("new"), Change: ChangeCreate},
		{ID: id("failed"), Change: ChangeUpdate},
	}
	res := &Result{}
	res.recordFields(manifest.ID{Kind: "Namespace", Name: "ns"}, "f-ns")
	res.recordFields(id("sent"), "f-sent")
	res.recordFields(id("new"), "f-new")
	res.recordFields(id("old"), "f-stray")
	got := recordedFields(&p, res)
	want := map[string]string{"Namespace/ns": "f-ns", "ns/ConfigMap/same": "f-same", "ns/ConfigMap/sent": "f-sent", "ns/ConfigMap/new": "f-new"}
	if !maps.Equal(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
}

// TestFieldsFingerprintFollowsOwnership checks the claim decide rests on with the API server's
// own field manager (client-go's fake clientset runs k8s.io/apimachinery's managedfields):
// kfdeploy's fingerprint stays as it is through a no-op re-apply and through other managers'
// writes to fields kfdeploy does not own, and moves when another manager removes or changes a
// field kfdeploy applied. test/e2e/drift_test.go checks the same against a real API server.
func TestFieldsFingerprintFollowsOwnership(t *testing.T) {
	ctx := context.Background()
	const hash = "sha256:abc"
	client := fake.NewClientset()
	deployments := client.AppsV1().Deployments("ns")
	desired := appsv1ac.Deployment("ui", "ns").
		WithLabels(map[string]string{"app.kubernetes.io/component": "frontend"}).
		WithAnnotations(map[string]string{AnnotationAppliedHash: hash}).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(1).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "ui"})).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(map[string]string{"app": "ui"}).
				WithAnnotations(map[string]string{"example.com/owner": "kfdeploy"}).
				WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().
					WithName("ui").WithImage("pause").
					WithEnv(corev1ac.EnvVar().WithName("MODE").WithValue("fast")).
					WithResources(corev1ac.ResourceRequirements().WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}))))))
	apply := func() string {
		t.Helper()
		if _, err := deployments.Apply(ctx, desired, metav1.ApplyOptions{FieldManager: inventory.FieldManager, Force: true}); err != nil {
			t.Fatal(err)
		}
		return currentFingerprint(t, deployments)
	}
	recorded := apply()
	if recorded == "" {
		t.Fatal("no fingerprint after kfdeploy's apply")
	}
	if again := apply(); again != recorded {
		t.Fatalf("a no-op re-apply moved the fingerprint: %s, was %s", again, recorded)
	}
	for _, tc := range []struct {
		name, manager string
		patchType     types.PatchType
		patch         string
		moves         bool
	}{
		{"rollout restart", "kubectl-rollout", types.StrategicMergePatchType, `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"now"}}}}}`, false},
		{"another label", "kubectl-label", types.MergePatchType, `{"metadata":{"labels":{"team":"ops"}}}`, false},
		{"a field kfdeploy does not set", "kubectl-patch", types.MergePatchType, `{"spec":{"minReadySeconds":5}}`, false},
		{"a removed label", "kubectl-label", types.MergePatchType, `{"metadata":{"labels":{"app.kubernetes.io/component":null}}}`, true},
		{"removed container resources", "kubectl-patch", types.JSONPatchType, `[{"op":"remove","path":"/spec/template/spec/containers/0/resources"}]`, true},
		{"a removed env var", "kubectl-patch", types.JSONPatchType, `[{"op":"remove","path":"/spec/template/spec/containers/0/env/0"}]`, true},
		{"a removed pod template annotation", "kubectl-annotate", types.MergePatchType, `{"spec":{"template":{"metadata":{"annotations":{"example.com/owner":null}}}}}`, true},
		{"an edited value", "kubectl-edit", types.MergePatchType, `{"spec":{"replicas":3}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := deployments.Patch(ctx, "ui", tc.patchType, []byte(tc.patch), metav1.PatchOptions{FieldManager: tc.manager}); err != nil {
				t.Fatal(err)
			}
			if got := currentFingerprint(t, deployments); (got != recorded) != tc.moves {
				t.Errorf("fingerprint after the patch moved = %v, want %v", got != recorded, tc.moves)
			}
			// kfdeploy's apply restores its fields and the fingerprint it records.
			if got := apply(); got != recorded {
				t.Errorf("fingerprint after the restoring apply %s, want %s", got, recorded)
			}
		})
	}
}

func currentFingerprint(t *testing.T, deployments typedappsv1.DeploymentInterface) string {
	t.Helper()
	d, err := deployments.Get(context.Background(), "ui", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return fieldsFingerprint(d.Annotations[AnnotationAppliedHash], d.ManagedFields)
}
