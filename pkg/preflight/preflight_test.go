package preflight

import (
	"context"
	"strings"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
)

// resettable adds the Reset that kube.Client's mapper needs to a static mapper.
type resettable struct{ meta.RESTMapper }

func (resettable) Reset() {}

func testMapper() meta.ResettableRESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	return resettable{m}
}

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name}}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func testEnv(cs *fake.Clientset, objs ...*unstructured.Unstructured) *env {
	app := config.New("myapp", config.PlatformNone, "kf", nil)
	c := &kube.Client{Typed: cs, Fast: cs, Mapper: testMapper()}
	return &env{client: c, fast: cs, app: "myapp", ns: "kf",
		opts: Options{App: app, Objects: objs, GPUResourceNames: app.GPUResourceNames()},
		snap: engine.NewSnapshot(c, inventory.ApplySet{App: "myapp", Namespace: "kf"}, objs, snapshot.Options{})}
}

func TestPermissionsListsExactlyTheMissingOnes(t *testing.T) {
	cs := fake.NewClientset()
	// Allowed: everything on services and namespaces, and get/list on deployments.
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attr := r.Spec.ResourceAttributes
		r.Status.Allowed = attr.Resource == "services" || attr.Resource == "namespaces" ||
			(attr.Resource == "deployments" && (attr.Verb == "get" || attr.Verb == "list"))
		return true, r, nil
	})
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "tfjobs.kubeflow.org")
	crd.Object["spec"] = map[string]any{"group": "kubeflow.org", "scope": "Namespaced",
		"names": map[string]any{"kind": "TFJob", "plural": "tfjobs"}}
	e := testEnv(cs,
		obj("v1", "Namespace", "", "kf"),
		obj("v1", "Service", "", "web"),
		obj("apps/v1", "Deployment", "", "web"),
		obj("kubeflow.org/v1", "TFJob", "", "job"),
		obj("example.com/v1", "Unknown", "", "x"),
		crd,
	)
	fs := (&permissionsCheck{e}).Run(context.Background())
	var got []string
	for _, f := range fs {
		got = append(got, string(f.Status)+": "+f.Finding)
	}
	want := []string{
		"fail: cannot get, list, create, patch, delete customresourcedefinitions.apiextensions.k8s.io cluster-wide",
		"fail: cannot get, create, update, delete leases.coordination.k8s.io in namespace default",
		"fail: cannot create, patch, delete deployments.apps in namespace kf",
		"fail: cannot get, create, patch, delete secrets in namespace kf",
		"fail: cannot get, list, create, patch, delete tfjobs.kubeflow.org in namespace kf",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(fs[2].Remedy, "kubectl create role kfdeploy-deployments-apps -n kf --verb=create,patch,delete --resource=deployments.apps") {
		t.Errorf("remedy %q", fs[2].Remedy)
	}
}

func TestPermissionsAllGranted(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	fs := (&permissionsCheck{testEnv(cs, obj("v1", "Service", "", "web"))}).Run(context.Background())
	if len(fs) != 1 || fs[0].Status != OK || !strings.Contains(fs[0].Finding, "all 17 permissions") {
		t.Errorf("findings %+v", fs)
	}
}

// ran records which checks ran; checks run concurrently.
type ran struct {
	mu    sync.Mutex
	names []string
}

func (r *ran) add(name string) {
	r.mu.Lock()
	r.names = append(r.names, name)
	r.mu.Unlock()
}

type fakeCheck struct {
	name     string
	findings []Finding
	ran      *ran
}

func (c fakeCheck) Name() string { return c.name }
func (c fakeCheck) Run(context.Context) []Finding {
	c.ran.add(c.name)
	return c.findings
}

type fakeGate struct{ fakeCheck }

func (fakeGate) gate() {}

func TestRunKeepsOrderAndStopsAfterAFailedGate(t *testing.T) {
	r := &ran{}
	checks := []Check{
		fakeGate{fakeCheck{"cluster", []Finding{{Status: OK, Finding: "up"}}, r}},
		fakeCheck{"a", []Finding{{Status: Warn, Finding: "w", Remedy: "r"}, {Status: Fail, Finding: "f"}}, r},
		fakeCheck{"b", nil, r},
	}
	rep := Run(context.Background(), checks)
	var names []string
	for _, f := range rep.Checks {
		names = append(names, f.Check+"="+string(f.Status))
	}
	if strings.Join(names, " ") != "cluster=ok a=warn a=fail b=ok" {
		t.Errorf("findings in order: %v", names)
	}
	if rep.Summary != (Summary{OK: 2, Warn: 1, Fail: 1}) || rep.Passed {
		t.Errorf("summary %+v passed %v", rep.Summary, rep.Passed)
	}

	r = &ran{}
	checks[0] = fakeGate{fakeCheck{"cluster", []Finding{{Status: Fail, Finding: "down"}}, r}}
	rep = Run(context.Background(), checks)
	if len(r.names) != 1 || len(rep.Checks) != 3 || rep.Checks[1].Finding != "not run: the cluster is not reachable" {
		t.Errorf("after a failed gate: ran %v, findings %+v", r.names, rep.Checks)
	}
}

func TestVersionFinding(t *testing.T) {
	for v, want := range map[string]Status{
		"v1.37.2": OK, "v1.29.0": OK, "v1.30.4-gke.100": OK,
		"v1.28.9": Fail, "v1.38.0": Warn, "garbage": Warn,
	} {
		if got := versionFinding("https://x", v); got.Status != want {
			t.Errorf("%s: %s (%s), want %s", v, got.Status, got.Finding, want)
		}
	}
}
