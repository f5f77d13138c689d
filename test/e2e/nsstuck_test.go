//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// TestStuckNamespaceIsExplained: a custom resource whose finalizer no controller removes keeps
// the app's namespace Terminating; delete --purge's timeout names the object, its finalizer, the
// namespace's condition and the remedy, and removes no finalizer itself.
func TestStuckNamespaceIsExplained(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--timeout", "2m")

	// A kind of someone else's (not the app's), installed by hand, with one object in the app's
	// namespace carrying a finalizer that nothing will ever remove.
	group := uniqueName("held") + ".e2e.kfdeploy.dev"
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if _, err := e.dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	widgets := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	const finalizer = "e2e.kfdeploy.dev/never-removed"
	t.Cleanup(func() {
		ctx := context.Background()
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = e.dyn.Resource(widgets).Namespace(ns).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{})
		_ = e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		_ = e.dyn.Resource(crdGVR).Delete(ctx, "widgets."+group, metav1.DeleteOptions{})
	})
	widget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "held", "namespace": ns, "finalizers": []any{finalizer}},
	}}
	eventually(t, time.Minute, "custom resource created once its CRD is served", func(ctx context.Context) (bool, error) {
		_, err := e.dyn.Resource(widgets).Namespace(ns).Create(ctx, widget, metav1.CreateOptions{})
		return err == nil, nil
	})

	// Someone else's object keeps the namespace unless --purge, which deletes it with the namespace.
	r := e.run(t, appDir, "delete", "--purge", "--yes", "--timeout", "20s")
	if r.code != 1 {
		t.Fatalf("delete of a namespace held by a finalizer: exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"Namespace/" + ns,
		"namespace " + ns + " is still Terminating",
		"left: Widget." + group + " (1): held (finalizers: " + finalizer + ")",
		"condition NamespaceFinalizersRemaining: ",
		"likely cause: finalizer " + finalizer,
		"no running controller removes it",
		"kubectl patch widgets." + group + " held -n " + ns + " --type=merge",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("delete's timeout does not say %q:\n%s", want, r.stderr)
		}
	}
	// Advice only: the finalizer is still there.
	got, err := e.dyn.Resource(widgets).Namespace(ns).Get(ctx, "held", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the held custom resource: %v", err)
	}
	if f := got.GetFinalizers(); len(f) != 1 || f[0] != finalizer {
		t.Errorf("delete changed the finalizers to %v", f)
	}

	// Once the finalizer is removed, the namespace goes.
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := e.dyn.Resource(widgets).Namespace(ns).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "namespace gone after the finalizer was removed", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			return false, nil
		}
		return apierrors.IsNotFound(err), nil
	})
}
