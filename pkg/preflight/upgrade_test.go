package preflight

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// TestRefusedFinding: a change the API server refuses is one failed finding naming the object
// and the field, with a remedy that fits the kind.
func TestRefusedFinding(t *testing.T) {
	cases := []struct {
		id          manifest.ID
		gvr         schema.GroupVersionResource
		errs        field.ErrorList
		wantFinding []string
		wantRemedy  string
	}{{
		id:  manifest.ID{Kind: "PersistentVolumeClaim", Namespace: "kf", Name: "modeldb-mysql"},
		gvr: schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"},
		errs: field.ErrorList{field.Forbidden(field.NewPath("spec"),
			"spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n@@ -1,1 +1,1 @@\n- \"StorageClassName\": \"\",")},
		wantFinding: []string{"kf/PersistentVolumeClaim/modeldb-mysql", "spec: Forbidden: spec is immutable"},
		wantRemedy:  "kubectl get pvc modeldb-mysql -n kf -o yaml",
	}, {
		id:          manifest.ID{Group: "apps", Kind: "StatefulSet", Namespace: "kf", Name: "tf-hub"},
		gvr:         schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
		errs:        field.ErrorList{field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas' are forbidden")},
		wantFinding: []string{"kf/StatefulSet.apps/tf-hub", "spec: Forbidden"},
		wantRemedy:  "kubectl delete statefulsets.apps tf-hub -n kf --cascade=orphan",
	}, {
		id:          manifest.ID{Group: "apps", Kind: "Deployment", Namespace: "kf", Name: "katib-ui"},
		gvr:         schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		errs:        field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), "x", "field is immutable")},
		wantFinding: []string{"kf/Deployment.apps/katib-ui", "spec.selector: Invalid value"},
		wantRemedy:  "kubectl delete deployments.apps katib-ui -n kf, then apply again",
	}, {
		id:          manifest.ID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "tfjobs.kubeflow.org"},
		gvr:         schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
		errs:        field.ErrorList{field.Invalid(field.NewPath("status", "storedVersions[0]"), "v1alpha2", "must appear in spec.versions")},
		wantFinding: []string{"CustomResourceDefinition.apiextensions.k8s.io/tfjobs.kubeflow.org", "status.storedVersions[0]"},
		wantRemedy:  "status.storedVersions",
	}}
	for _, c := range cases {
		err := apierrors.NewInvalid(c.id.GroupKind(), c.id.Name, c.errs)
		f := refusedFinding(c.id, c.gvr, err)
		if f.Status != Fail {
			t.Errorf("%s: status %s, want fail", c.id, f.Status)
		}
		for _, w := range c.wantFinding {
			if !strings.Contains(f.Finding, w) {
				t.Errorf("%s: finding %q lacks %q", c.id, f.Finding, w)
			}
		}
		if !strings.Contains(f.Remedy, c.wantRemedy) {
			t.Errorf("%s: remedy %q lacks %q", c.id, f.Remedy, c.wantRemedy)
		}
		if strings.Contains(f.Finding, "\n") || strings.Contains(f.Remedy, "\n") {
			t.Errorf("%s: finding or remedy spans lines", c.id)
		}
	}
}

// TestLeftClaims: a claim of the app that its manifests no longer have is named (it is kept,
// not pruned, and nothing mounts it), one it still has is not, nor a claim of another app.
func TestLeftClaims(t *testing.T) {
	set := inventory.ApplySet{App: "myapp", Namespace: "kf"}
	claim := func(name, setID string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kf",
			Labels: map[string]string{inventory.LabelPartOf: setID}}}
	}
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kf"}},
		claim("db", set.ID()),
		claim("db-renamed-away", set.ID()),
		claim("other-apps", inventory.ApplySet{App: "other", Namespace: "kf"}.ID()),
	)
	e := testEnv(cs, obj("v1", "PersistentVolumeClaim", "kf", "db"))
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, meta.RESTScopeNamespace)
	e.client.Mapper = resettable{m}
	c := &upgradeCheck{e}
	fs := c.leftClaims(context.Background(), set, c.existingNamespaces(context.Background()))
	if len(fs) != 1 || fs[0].Status != Warn || !strings.Contains(fs[0].Finding, "kf/db-renamed-away") ||
		!strings.Contains(fs[0].Remedy, "kubectl delete pvc db-renamed-away -n kf") {
		t.Errorf("findings %+v, want one warning naming kf/db-renamed-away", fs)
	}
}

// TestStoredVersions: a CRD whose new manifest drops a version that objects are stored in is
// refused before apply; one that keeps it, or that does not exist yet, passes.
func TestStoredVersions(t *testing.T) {
	crd := func(versions ...string) *unstructured.Unstructured {
		var vs []any
		for _, v := range versions {
			vs = append(vs, map[string]any{"name": v, "served": true, "storage": v == versions[len(versions)-1]})
		}
		u := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "tfjobs.kubeflow.org")
		u.Object["spec"] = map[string]any{"group": "kubeflow.org", "versions": vs}
		return u
	}
	live := crd("v1alpha2", "v1")
	live.Object["status"] = map[string]any{"storedVersions": []any{"v1alpha2", "v1"}}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "CustomResourceDefinitionList"}, live)
	for _, c := range []struct {
		manifest *unstructured.Unstructured
		refused  bool
	}{{crd("v1"), true}, {crd("v1alpha2", "v1"), false}} {
		e := testEnv(fake.NewClientset(), c.manifest)
		e.client.Dynamic = dyn
		tg := e.resolved()[0]
		f, refused, err := (&upgradeCheck{e}).storedVersions(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		if refused != c.refused || (refused && (!strings.Contains(f.Finding, "v1alpha2") || !strings.Contains(f.Remedy, "status.storedVersions"))) {
			t.Errorf("manifest versions %v: refused %v (%q), want %v", c.manifest.Object["spec"], refused, f.Finding, c.refused)
		}
	}
	e := testEnv(fake.NewClientset(), crd("v1"))
	e.client.Dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "CustomResourceDefinitionList"})
	if _, refused, err := (&upgradeCheck{e}).storedVersions(context.Background(), e.resolved()[0]); err != nil || refused {
		t.Errorf("a CRD not on the cluster yet: refused %v, error %v", refused, err)
	}
}
