package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/restmapper"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// testServed is a v1.37-like server: core, apps, policy/v1, batch/v1, autoscaling v1 and v2.
func testServed() map[kindKey]bool {
	return map[kindKey]bool{
		{"v1", "ConfigMap"}: true, {"v1", "Service"}: true,
		{"apps/v1", "Deployment"}:                     true,
		{"policy/v1", "PodDisruptionBudget"}:          true,
		{"batch/v1", "CronJob"}:                       true,
		{"autoscaling/v1", "HorizontalPodAutoscaler"}: true, {"autoscaling/v2", "HorizontalPodAutoscaler"}: true,
		{"apiextensions.k8s.io/v1", "CustomResourceDefinition"}: true,
		{"example.com/v2", "Widget"}:                            true,
	}
}

func crdObj(group, kind string, versions map[string]bool) *unstructured.Unstructured {
	o := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", strings.ToLower(kind)+"s."+group)
	var vs []any
	for v, served := range versions {
		vs = append(vs, map[string]any{"name": v, "served": served})
	}
	o.Object["spec"] = map[string]any{"group": group, "names": map[string]any{"kind": kind, "plural": strings.ToLower(kind) + "s"}, "versions": vs}
	return o
}

func TestEvaluateAPIs(t *testing.T) {
	cases := []struct {
		name   string
		objs   []*unstructured.Unstructured
		failed map[string]error
		want   []string // "status: finding" prefixes, in order
		remedy string   // part of the first finding's remedy
	}{
		{
			name: "all served",
			objs: []*unstructured.Unstructured{obj("v1", "ConfigMap", "kf", "a"), obj("apps/v1", "Deployment", "kf", "b")},
			want: []string{"ok: all 2 kinds of the manifests are served"},
		},
		{
			name:   "removed PodDisruptionBudget names file and successor",
			objs:   []*unstructured.Unstructured{obj("policy/v1beta1", "PodDisruptionBudget", "kf", "web"), obj("policy/v1beta1", "PodDisruptionBudget", "kf", "db")},
			want:   []string{"fail: manifests/mine.yaml: policy/v1beta1 PodDisruptionBudget kf/web, kf/db: not served (removed in Kubernetes v1.25); use apiVersion policy/v1"},
			remedy: "change apiVersion to policy/v1",
		},
		{
			name: "removed kinds by wildcard",
			objs: []*unstructured.Unstructured{obj("extensions/v1beta1", "Deployment", "kf", "web"), obj("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "", "r")},
			want: []string{
				"fail: manifests/mine.yaml: extensions/v1beta1 Deployment kf/web: not served (removed in Kubernetes v1.16); use apiVersion apps/v1",
				"fail: manifests/mine.yaml: rbac.authorization.k8s.io/v1beta1 ClusterRole r: not served (removed in Kubernetes v1.22); use apiVersion rbac.authorization.k8s.io/v1",
			},
		},
		{
			name: "HPA v2beta2 and CronJob v1beta1",
			objs: []*unstructured.Unstructured{obj("autoscaling/v2beta2", "HorizontalPodAutoscaler", "kf", "h"), obj("batch/v1beta1", "CronJob", "kf", "c")},
			want: []string{
				"fail: manifests/mine.yaml: autoscaling/v2beta2 HorizontalPodAutoscaler kf/h: not served (removed in Kubernetes v1.26); use apiVersion autoscaling/v2",
				"fail: manifests/mine.yaml: batch/v1beta1 CronJob kf/c: not served (removed in Kubernetes v1.25); use apiVersion batch/v1",
			},
		},
		{
			name:   "PodSecurityPolicy has no successor",
			objs:   []*unstructured.Unstructured{obj("policy/v1beta1", "PodSecurityPolicy", "", "p")},
			want:   []string{"fail: manifests/mine.yaml: policy/v1beta1 PodSecurityPolicy p: not served (removed in Kubernetes v1.25); PodSecurityPolicy is gone"},
			remedy: "remove these objects",
		},
		{
			name: "kind of the app's own CRD, served version",
			objs: []*unstructured.Unstructured{crdObj("kubeflow.org", "TFJob", map[string]bool{"v1": true}), obj("kubeflow.org/v1", "TFJob", "kf", "j")},
			want: []string{"ok: all 2 kinds of the manifests are served (1 objects by the app's own CustomResourceDefinitions, once applied)"},
		},
		{
			name: "kind of the app's own CRD, version not served",
			objs: []*unstructured.Unstructured{crdObj("kubeflow.org", "TFJob", map[string]bool{"v1": true, "v1beta1": false}), obj("kubeflow.org/v1beta1", "TFJob", "kf", "j")},
			want: []string{"fail: manifests/mine.yaml: kubeflow.org/v1beta1 TFJob kf/j: the app's CustomResourceDefinition for TFJob.kubeflow.org does not serve version v1beta1 (it serves kubeflow.org/v1)"},
		},
		{
			name: "unknown version of a served kind names the served ones",
			objs: []*unstructured.Unstructured{obj("example.com/v1", "Widget", "kf", "w")},
			want: []string{"fail: manifests/mine.yaml: example.com/v1 Widget kf/w: not served; this server serves Widget in example.com/v2"},
		},
		{
			name: "unknown kind",
			objs: []*unstructured.Unstructured{obj("nope.example.com/v1", "Thing", "kf", "t")},
			want: []string{"fail: manifests/mine.yaml: nope.example.com/v1 Thing kf/t: not served by this server, and no CustomResourceDefinition of the app defines it"},
		},
		{
			name:   "group whose discovery failed is not judged",
			objs:   []*unstructured.Unstructured{obj("metrics.k8s.io/v1beta1", "NodeMetrics", "", "n")},
			failed: map[string]error{"metrics.k8s.io/v1beta1": errors.New("service unavailable")},
			want:   []string{"warn: the API server could not list the kinds of metrics.k8s.io/v1beta1"},
			remedy: "kubectl get apiservice v1beta1.metrics.k8s.io",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[manifest.ID]string{}
			for _, o := range tc.objs {
				files[manifest.IDOf(o)] = "manifests/mine.yaml"
			}
			wantFindings(t, evaluateAPIs(tc.objs, files, testServed(), tc.failed), tc.want, tc.remedy)
		})
	}
}

// The check reads the served kinds from discovery, and re-reads a stale cache once.
func TestAPIsCheckReadsDiscovery(t *testing.T) {
	fd := &fakediscovery.FakeDiscovery{Fake: &fake.NewClientset().Fake}
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap"}, {Name: "pods/status", Kind: "Pod"}}},
		{GroupVersion: "policy/v1", APIResources: []metav1.APIResource{{Name: "poddisruptionbudgets", Kind: "PodDisruptionBudget"}}},
	}
	cached := memory.NewMemCacheClient(fd)
	e := testEnv(fake.NewClientset(), obj("v1", "ConfigMap", "kf", "a"), obj("policy/v1beta1", "PodDisruptionBudget", "kf", "p"), obj("v1", "Pod", "kf", "x"))
	e.client.Discovery = cached
	e.opts.Files = map[manifest.ID]string{manifest.IDOf(e.opts.Objects[1]): "manifests/pdb.yaml"}
	fs := (&apisCheck{e}).Run(context.Background())
	var got []string
	for _, f := range fs {
		got = append(got, string(f.Status)+": "+f.Finding)
	}
	want := []string{
		"fail: manifests: v1 Pod kf/x: not served by this server, and no CustomResourceDefinition of the app defines it",
		"fail: manifests/pdb.yaml: policy/v1beta1 PodDisruptionBudget kf/p: not served (removed in Kubernetes v1.25); use apiVersion policy/v1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestServedKindsKeepsFailedGroupsApart(t *testing.T) {
	d := failingDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: &fake.NewClientset().Fake}}
	served, failed, err := servedKinds(d)
	if err != nil {
		t.Fatal(err)
	}
	if !served[kindKey{"v1", "ConfigMap"}] || failed["metrics.k8s.io/v1beta1"] == nil {
		t.Errorf("served %v failed %v", served, failed)
	}
}

// failingDiscovery serves v1 and fails metrics.k8s.io/v1beta1, as a down aggregated API does.
type failingDiscovery struct{ *fakediscovery.FakeDiscovery }

func (failingDiscovery) ServerGroupsAndResources() ([]*metav1.APIGroup, []*metav1.APIResourceList, error) {
	return nil, []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap"}}}},
		&discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("503")}}
}

// wantFindings checks findings against "status: finding" prefixes, in order, and that the
// first finding's remedy contains remedy (unless empty).
func wantFindings(t *testing.T, fs []Finding, want []string, remedy string) {
	t.Helper()
	if len(fs) != len(want) {
		t.Fatalf("findings %+v, want %d", fs, len(want))
	}
	for i, w := range want {
		if got := string(fs[i].Status) + ": " + fs[i].Finding; !strings.HasPrefix(got, w) {
			t.Errorf("finding %d\n got %q\nwant %q...", i, got, w)
		}
	}
	if remedy != "" && !strings.Contains(fs[0].Remedy, remedy) {
		t.Errorf("remedy %q lacks %q", fs[0].Remedy, remedy)
	}
}

// When the check finds the cached discovery stale, the run's mapper, which may have read that
// cache already, reads anew too: the apply after preflight maps what preflight found served.
func TestAPIsCheckRefreshesTheMapper(t *testing.T) {
	fd := &fakediscovery.FakeDiscovery{Fake: &fake.NewClientset().Fake}
	fd.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap", Namespaced: true}}}}
	cached := memory.NewMemCacheClient(fd)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	route := schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
	if _, err := mapper.RESTMapping(route.GroupKind(), route.Version); err == nil {
		t.Fatal("HTTPRoute mapped before its CRD exists")
	}
	// Another tool installs the CRD; the cache and the mapper still hold the old discovery.
	fd.Resources = append(fd.Resources, &metav1.APIResourceList{GroupVersion: "gateway.networking.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}}})
	e := testEnv(fake.NewClientset(), obj("gateway.networking.k8s.io/v1", "HTTPRoute", "kf", "r"))
	e.client.Discovery, e.client.Mapper = cached, mapper
	fs := (&apisCheck{e}).Run(context.Background())
	if len(fs) != 1 || fs[0].Status != OK {
		t.Fatalf("findings %+v, want the kind served", fs)
	}
	if m, err := mapper.RESTMapping(route.GroupKind(), route.Version); err != nil || m.Resource.Resource != "httproutes" {
		t.Errorf("the run's mapper after the check: %v, %v; want HTTPRoute mapped", m, err)
	}
}
