package preflight

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

func watching(value, install string) *unstructured.Unstructured {
	o := obj("apps/v1", "Deployment", "kf", "gw")
	a := map[string]string{AnnotationWatches: value}
	if install != "" {
		a[AnnotationWatchesInstall] = install
	}
	o.SetAnnotations(a)
	return o
}

// A workload's watched kinds must be served, or defined by the app's own CRDs; the objects of a
// watched kind that is missing get the workload's install remedy.
func TestEvaluateWatches(t *testing.T) {
	const install = "install the Widget CRDs (kubectl apply -f widgets.yaml)"
	cases := []struct {
		name   string
		objs   []*unstructured.Unstructured
		failed map[string]error
		want   []string
		remedy string
	}{
		{
			name: "all watched kinds served",
			objs: []*unstructured.Unstructured{watching("v1/Service, example.com/v2/Widget,apps/v1/Deployment", install)},
			want: []string{"ok: all 1 kinds of the manifests are served"},
		},
		{
			name: "a watched kind missing, and one the app's CRD defines",
			objs: []*unstructured.Unstructured{
				watching("example.com/v2/Widget,example.com/v1/Gadget,example.com/v1/Gizmo", install),
				crdObj("example.com", "Gizmo", map[string]bool{"v1": true}),
			},
			want:   []string{"fail: manifests/mine.yaml: Deployment kf/gw watches example.com/v1 Gadget, which the server does not serve: its program would wait for them forever"},
			remedy: install + ", then run 'kfdeploy apply' again",
		},
		{
			name: "an object of a missing watched kind gets the install remedy",
			objs: []*unstructured.Unstructured{watching("example.com/v1/Gadget", install), obj("example.com/v1", "Gadget", "kf", "g")},
			want: []string{
				"fail: manifests/mine.yaml: Deployment kf/gw watches example.com/v1 Gadget",
				"fail: manifests/mine.yaml: example.com/v1 Gadget kf/g: not served",
			},
			remedy: install,
		},
		{
			name:   "without an install remedy",
			objs:   []*unstructured.Unstructured{watching("example.com/v1/Gadget", "")},
			want:   []string{"fail: manifests/mine.yaml: Deployment kf/gw watches example.com/v1 Gadget"},
			remedy: "install the CustomResourceDefinitions of these kinds",
		},
		{
			name:   "malformed annotation",
			objs:   []*unstructured.Unstructured{watching("example.com/v1/Gadget,Gizmo", install)},
			want:   []string{`fail: manifests/mine.yaml: Deployment kf/gw: annotation kfdeploy.dev/watches: "Gizmo" is not apiVersion/Kind`},
			remedy: "comma-separated apiVersion/Kind",
		},
		{
			name:   "a group whose discovery failed is not judged",
			objs:   []*unstructured.Unstructured{watching("metrics.k8s.io/v1beta1/NodeMetrics", install)},
			failed: map[string]error{"metrics.k8s.io/v1beta1": errors.New("service unavailable")},
			want:   []string{"ok: all 1 kinds of the manifests are served"},
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
