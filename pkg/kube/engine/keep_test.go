package engine

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

var crdID = manifest.ID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "workflows.argoproj.io"}

func mkMember(id manifest.ID, labels, annotations map[string]string) inventory.Member {
	return inventory.Member{ID: id, Meta: metav1.ObjectMeta{Name: id.Name, Namespace: id.Namespace, Labels: labels, Annotations: annotations}}
}

// deleteCase is a small app: two created namespaces, a workload, a claim, a CRD.
func deleteCase(s inventory.ApplySet) (inventory.Record, map[manifest.ID]inventory.Member) {
	self := map[string]string{inventory.LabelPartOf: s.ID()}
	members := map[manifest.ID]inventory.Member{}
	for _, m := range []inventory.Member{
		mkMember(manifest.ID{Kind: "Namespace", Name: "kubeflow"}, self, nil),
		mkMember(manifest.ID{Kind: "Namespace", Name: "data"}, self, nil),
		mkMember(manifest.ID{Kind: "Namespace", Name: "shared"}, self, nil),
		mkMember(manifest.ID{Kind: "ConfigMap", Namespace: "kubeflow", Name: "a"}, self, nil),
		mkMember(manifest.ID{Kind: "ServiceAccount", Namespace: "kubeflow", Name: "b"}, self, nil),
		mkMember(manifest.ID{Kind: "PersistentVolumeClaim", Namespace: "data", Name: "db"}, self, nil),
		mkMember(manifest.ID{Kind: "Secret", Namespace: "data", Name: "pw"}, self, map[string]string{inventory.AnnotationKeepOnDelete: "true"}),
		mkMember(crdID, self, nil),
	} {
		members[m.ID] = m
	}
	inv := inventory.Record{Exists: true, CreatedNamespaces: []string{"kubeflow", "data"}, Cluster: clusterid.Identity{UID: "u"},
		GroupKinds: []schema.GroupKind{{Kind: "ConfigMap"}, crdID.GroupKind()}}
	return inv, members
}

func contentsFixture(id manifest.ID) ([]Contents, error) {
	switch {
	case id.IsCRD():
		return []Contents{
			{Holder: id.String(), Kind: "Workflow.argoproj.io", Namespace: "alice", Count: 2, Names: []string{"w1", "w2"}},
			{Holder: id.String(), Kind: "Workflow.argoproj.io", Namespace: "bob", Count: 1, Names: []string{"w3"}},
		}, nil
	case id.IsNamespace() && id.Name == "kubeflow":
		return []Contents{{Holder: id.String(), Kind: "PersistentVolumeClaim", Namespace: "kubeflow", Count: 1, Names: []string{"claim-alice"}}}, nil
	}
	return nil, nil
}

func TestDecideDeleteKeepsCRDsAndUsersNamespaces(t *testing.T) {
	s := inventory.ApplySet{App: "lab", Namespace: "kubeflow"}
	inv, members := deleteCase(s)

	sv, err := decideDelete(s, inv, members, nil, nil, inventory.Parents{}, false, contentsFixture)
	if err != nil {
		t.Fatal(err)
	}
	crd, ok := sv.kept[crdID]
	if !ok || !crd.recorded {
		t.Fatalf("without --purge the CRD is not kept and recorded: %+v", sv.kept)
	}
	if !strings.Contains(crd.reason, "holds 3 Workflows in 2 namespaces") {
		t.Errorf("kept CRD reason %q: want what it holds, 3 Workflows in 2 namespaces", crd.reason)
	}
	ns, ok := sv.kept[manifest.ID{Kind: "Namespace", Name: "kubeflow"}]
	if !ok || !strings.Contains(ns.reason, "PersistentVolumeClaim (claim-alice)") {
		t.Errorf("namespace kubeflow holding a user's claim: kept %v, reason %q; want kept, naming claim-alice", ok, ns.reason)
	}
	if len(sv.namespaces) != 0 || len(sv.goes) != 0 {
		t.Errorf("without --purge: namespaces to delete %v, goes %v; want none", sv.namespaces, sv.goes)
	}
	p := sv.plan(inv)
	if p.Delete != 2 || p.Keep != 3 || p.Namespaces != 0 || p.Recorded.UID != "u" {
		t.Errorf("plan without --purge = %+v, want 2 to delete (ConfigMap, ServiceAccount), 3 kept (claim, secret, CRD), no namespace", p)
	}
	next, keep := keptInventory(s, inv, sv.kept)
	if !keep || !sets.New(next.GroupKinds...).Has(crdID.GroupKind()) {
		t.Errorf("the inventory after delete (kept %v) does not list the kept CRD: %v", keep, next.GroupKinds)
	}

	sv, err = decideDelete(s, inv, members, nil, nil, inventory.Parents{}, true, contentsFixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(sv.kept) != 1 { // "shared" existed before kfdeploy applied it
		t.Errorf("with --purge kept %v, want only the namespace kfdeploy did not create", sv.kept)
	}
	p = sv.plan(inv)
	if p.Delete != 5 || p.Namespaces != 2 || len(p.Goes) != 3 {
		t.Errorf("plan with --purge = %+v, want 5 to delete, the 2 created namespaces, and the 3 groups of users' objects named", p)
	}
	if _, keep := keptInventory(s, inv, sv.kept); !keep {
		t.Error("a kept pre-existing namespace no longer keeps the inventory")
	}
}

func TestDecideDeleteLeavesSharedObjectsToTheOtherApp(t *testing.T) {
	x := inventory.ApplySet{App: "app", Namespace: "x1"}
	y := inventory.ApplySet{App: "app", Namespace: "y1"}
	parents := inventory.Parents{
		x.ID(): {Ref: inventory.AppRef{App: "app", Namespace: "x1"}, Kinds: sets.New(crdID.GroupKind()), Shared: sets.New[manifest.ID]()},
		y.ID(): {Ref: inventory.AppRef{App: "app", Namespace: "y1"}, Kinds: sets.New[schema.GroupKind](), Shared: sets.New(crdID)},
	}
	// x owns the CRD; y records it as shared: x's delete --purge keeps it for y.
	inv, members := deleteCase(x)
	sv, err := decideDelete(x, inv, members, nil, nil, parents, true, contentsFixture)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := sv.kept[crdID]
	if !ok || k.recorded || !strings.Contains(k.reason, "shared with app app in namespace y1") {
		t.Errorf("x's purge: CRD kept %v (recorded %v), reason %q; want kept for app app in namespace y1, not recorded by x", ok, k.recorded, k.reason)
	}
	for _, c := range sv.goes {
		if strings.Contains(c.Holder, "CustomResourceDefinition") {
			t.Errorf("x's purge names %v as going, but the CRD stays", c)
		}
	}

	// y's delete: the CRD is x's (x lists it); without x it would be y's own.
	owned := map[manifest.ID]inventory.Member{crdID: mkMember(crdID, map[string]string{inventory.LabelPartOf: x.ID()}, nil)}
	if why := sharedReason(parents.Others(y, crdID, owned[crdID].Meta)); !strings.Contains(why, "namespace x1") {
		t.Errorf("y: reason %q, want shared with the app in x1", why)
	}
	delete(parents, x.ID())
	if why := sharedReason(parents.Others(y, crdID, owned[crdID].Meta)); why != "" {
		t.Errorf("y with x gone: %q, want no other app listing the CRD", why)
	}
	yinv := inventory.Record{Exists: true, Shared: []manifest.ID{crdID}}
	sv, err = decideDelete(y, yinv, map[manifest.ID]inventory.Member{}, owned, nil, parents, false, contentsFixture)
	if err != nil {
		t.Fatal(err)
	}
	if k := sv.kept[crdID]; !k.recorded || !k.shared {
		t.Errorf("y without --purge, x gone: the CRD is %+v; want kept and recorded as shared, for a later purge", k)
	}
	if next, keep := keptInventory(y, yinv, sv.kept); !keep || len(next.Shared) != 1 {
		t.Errorf("y's inventory after delete: %+v (kept %v), want it to record the shared CRD", next, keep)
	}
	sv, err = decideDelete(y, yinv, map[manifest.ID]inventory.Member{}, owned, nil, parents, true, contentsFixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(sv.doomed) != 1 || sv.doomed[0].ID != crdID {
		t.Errorf("y's purge, x gone: doomed %v, want the CRD", sv.doomed)
	}
}

func TestPlanPruneKeepsHeldObjects(t *testing.T) {
	s := inventory.ApplySet{App: "lab", Namespace: "kubeflow"}
	_, members := deleteCase(s)
	held := map[manifest.ID]string{crdID: "holds 3 Workflows in 2 namespaces"}
	steps := planPrune(members, sets.New[manifest.ID](), true, held)
	for _, st := range steps {
		if st.ID != crdID {
			continue
		}
		if st.Change != ChangeKeep || !strings.Contains(st.Reason, "holds 3 Workflows") {
			t.Errorf("CRD holding custom resources: %s (%s), want kept with what it holds", st.Change, st.Reason)
		}
		return
	}
	t.Fatal("no prune step for the CRD")
}

func TestDescribeContents(t *testing.T) {
	crd := crdID.String()
	for _, tc := range []struct {
		in   []Contents
		want string
	}{
		{nil, "no objects"},
		{[]Contents{{Holder: crd, Kind: "Workflow.argoproj.io", Namespace: "a", Count: 1}}, "1 Workflow in 1 namespace"},
		{[]Contents{{Holder: crd, Kind: "Workflow.argoproj.io", Namespace: "a", Count: 2}, {Holder: crd, Kind: "Workflow.argoproj.io", Namespace: "b", Count: 1}}, "3 Workflows in 2 namespaces"},
		{[]Contents{{Holder: "Namespace/lab", Kind: "PersistentVolumeClaim", Namespace: "lab", Count: 1, Names: []string{"claim-alice"}}}, "1 PersistentVolumeClaim (claim-alice)"},
		{[]Contents{{Holder: "Namespace/lab", Kind: "NetworkPolicy.networking.k8s.io", Namespace: "lab", Count: 12, Names: []string{"a"}}}, "12 NetworkPolicies (a, ...)"},
	} {
		if got := DescribeContents(tc.in); got != tc.want {
			t.Errorf("DescribeContents(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestShareVerdict(t *testing.T) {
	owner := inventory.ApplySet{App: "app", Namespace: "x1"}
	crd := func(desc string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": "workflows.argoproj.io"}, "spec": map[string]any{"group": "argoproj.io", "description": desc}}}
	}
	// What the owner sent: its labels, its hash.
	sent := label(owner, crd("v1"))
	h, err := contentHash(sent)
	if err != nil {
		t.Fatal(err)
	}
	live := metav1.ObjectMeta{Annotations: map[string]string{AnnotationAppliedHash: h}, Labels: sent.GetLabels()}
	// The second app's own labels do not matter: it is compared as the owner would send it.
	second := label(inventory.ApplySet{App: "app", Namespace: "y1"}, crd("v1"))
	if why := ShareVerdict(second, owner, live); why != "" {
		t.Errorf("identical CRD: %q, want shared", why)
	}
	if why := ShareVerdict(crd("v2"), owner, live); !strings.Contains(why, "differs") {
		t.Errorf("CRD with other content: %q, want refused as different", why)
	}
	webhook := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "katib.kubeflow.org"}}}
	if why := ShareVerdict(webhook, owner, live); !strings.Contains(why, "one namespace") {
		t.Errorf("webhook configuration: %q, want refused", why)
	}
}

// TestPlanSharedLeavesIdenticalCRDsAndRefusesWebhooks: the second app (y1) plans to create a
// CRD and a webhook configuration the first app (x1) owns: the identical CRD becomes a step
// that sends nothing and is recorded as shared; the webhook configuration is refused, naming
// the first app; a leftover of no live app is adopted (created as usual).
func TestPlanSharedLeavesIdenticalCRDsAndRefusesWebhooks(t *testing.T) {
	x := inventory.ApplySet{App: "app", Namespace: "x1"}
	y := inventory.ApplySet{App: "app", Namespace: "y1"}
	c := client{&kube.Client{}}
	crdObj := func(name string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"group": "argoproj.io"}}}
	}
	webhook := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "katib.kubeflow.org"}}}
	ownedBy := func(set inventory.ApplySet, o *unstructured.Unstructured, gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
		sent := label(set, o)
		h, err := contentHash(sent)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
			ObjectMeta: metav1.ObjectMeta{Name: o.GetName(), Labels: sent.GetLabels(), Annotations: map[string]string{AnnotationAppliedHash: h}}}
	}
	crdGVK := schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
	whGVK := schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}
	leftoverSet := inventory.ApplySet{App: "gone", Namespace: "old"}
	md := kubetest.Metadata(t,
		ownedBy(x, crdObj("workflows.argoproj.io"), crdGVK),
		ownedBy(leftoverSet, crdObj("cronworkflows.argoproj.io"), crdGVK),
		ownedBy(x, webhook, whGVK))
	c.Metadata = md
	parents := inventory.Parents{x.ID(): {Ref: inventory.AppRef{App: "app", Namespace: "x1"}, Kinds: sets.New(crdGVK.GroupKind(), whGVK.GroupKind()), Shared: sets.New[manifest.ID]()}}

	step := func(o *unstructured.Unstructured, resource string, gvk schema.GroupVersionKind) Step {
		o = label(y, o)
		gvr := gvk.GroupVersion().WithResource(resource)
		return Step{ID: manifest.IDOf(o), Change: ChangeCreate, target: planned{obj: o, id: manifest.IDOf(o), mapping: &meta.RESTMapping{Resource: gvr, Scope: meta.RESTScopeRoot}}}
	}
	plan := Plan{}
	plan.Levels[0] = []Step{
		step(crdObj("workflows.argoproj.io"), "customresourcedefinitions", crdGVK),
		step(crdObj("cronworkflows.argoproj.io"), "customresourcedefinitions", crdGVK),
	}
	shared, err := c.planShared(context.Background(), y, &plan, parents)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 || shared[0].Name != "workflows.argoproj.io" {
		t.Errorf("shared %v, want the CRD the first app owns", shared)
	}
	for _, st := range plan.Levels[0] {
		switch st.ID.Name {
		case "workflows.argoproj.io":
			if st.Change != ChangeNone || st.sharedWith.Namespace != "x1" {
				t.Errorf("the identical CRD: %s (%s), want sent nothing, shared with x1", st.Change, st.Reason)
			}
		case "cronworkflows.argoproj.io":
			if st.Change != ChangeCreate {
				t.Errorf("the leftover of no live app: %s, want created (adopted)", st.Change)
			}
		}
	}
	if len(plan.targets()) != 1 {
		t.Errorf("targets %d, want only the adopted CRD waited for", len(plan.targets()))
	}

	plan.Levels[0] = append(plan.Levels[0], step(webhook, "validatingwebhookconfigurations", whGVK))
	_, err = c.planShared(context.Background(), y, &plan, parents)
	if err == nil || !strings.Contains(err.Error(), "ValidatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org belongs to kfdeploy app app in namespace x1") {
		t.Errorf("planShared with the first app's webhook configuration: %v, want a refusal naming it", err)
	}
}
