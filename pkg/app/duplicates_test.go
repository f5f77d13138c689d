package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateRejectsObjectDuplicatedByNamespaceDefaulting: a ConfigMap that one component
// renders in the app's namespace and another renders without a namespace is the same object
// once the namespace is defaulted; generate names both components and files and writes nothing.
// Cluster-scoped kinds are one object whatever namespace is written on them, and a custom
// resource is scoped as its CRD says.
func TestGenerateRejectsObjectDuplicatedByNamespaceDefaulting(t *testing.T) {
	const explicit = `{ render(p, env):: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared', namespace: env.namespace }, data: { a: '1' } }] }`
	const defaulted = `{ render(p, env):: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared' }, data: { a: '2' } }] }`
	const otherNS = `{ render(p, env):: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared', namespace: 'elsewhere' }, data: { a: '3' } }] }`
	const roleA = `{ render(p, env):: [{ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r', namespace: env.namespace } }] }`
	const roleB = `{ render(p, env):: [{ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' } }] }`
	const crd = `{ render(p, env):: [
	  { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
	    spec: { group: 'example.com', scope: 'Cluster', names: { kind: 'Widget', plural: 'widgets' } } },
	  { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'x' } },
	] }`
	const widget = `{ render(p, env):: [{ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }] }`
	for _, tc := range []struct {
		name       string
		components map[string]string
		order      []string
		want       []string // parts of the error; none: no error
	}{
		{"explicit and defaulted namespace", map[string]string{"first": explicit, "second": defaulted}, []string{"first", "second"},
			[]string{"ml/ConfigMap/shared", "component first (manifests/first.yaml, namespace ml)", "component second (manifests/second.yaml, no namespace, defaulted"}},
		{"same name in another namespace", map[string]string{"first": explicit, "second": otherNS}, []string{"first", "second"}, nil},
		{"cluster-scoped kind with and without namespace", map[string]string{"a": roleA, "b": roleB}, []string{"a", "b"},
			[]string{"ClusterRole.rbac.authorization.k8s.io/r", "component a", "component b"}},
		{"custom resource scoped by its CRD", map[string]string{"a": crd, "b": widget}, []string{"a", "b"},
			[]string{"Widget.example.com/w", "component a", "component b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newTestApp(t, tc.components, tc.order...)
			_, err := Generate(context.Background(), dir)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("generate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("generate accepted an object defined twice")
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
			if _, statErr := os.Stat(filepath.Join(dir, ManifestsDir)); !os.IsNotExist(statErr) {
				t.Errorf("manifests written despite the duplicate: %v", statErr)
			}
		})
	}
}
