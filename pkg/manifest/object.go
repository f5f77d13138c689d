// Package manifest holds Kubernetes objects as data: identity, validation, ordering and YAML
// encoding. It never talks to a cluster.
package manifest

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ID names an object the way users read it: group/Kind namespace/name.
type ID struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// IDOf returns the identity of an object.
func IDOf(o *unstructured.Unstructured) ID {
	gvk := o.GroupVersionKind()
	return ID{Group: gvk.Group, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// GroupKind of the object.
func (id ID) GroupKind() schema.GroupKind { return schema.GroupKind{Group: id.Group, Kind: id.Kind} }

// String reads like kubectl's "kind.group/name" with the namespace first: "kubeflow/Deployment.apps/jupyter".
func (id ID) String() string {
	kind := id.Kind
	if id.Group != "" {
		kind += "." + id.Group
	}
	if id.Namespace == "" {
		return kind + "/" + id.Name
	}
	return id.Namespace + "/" + kind + "/" + id.Name
}

// Validate checks the fields every object needs before it can be applied.
func Validate(o *unstructured.Unstructured) error {
	var missing []string
	if o.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if o.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if o.GetName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s %q has no %s", o.GetKind(), o.GetName(), strings.Join(missing, ", "))
	}
	return nil
}

// Less orders objects for output and apply: by kind rank, then kind, namespace and name.
func Less(a, b *unstructured.Unstructured) bool {
	ia, ib := IDOf(a), IDOf(b)
	ra, _ := rankOf(ia.GroupKind())
	rb, _ := rankOf(ib.GroupKind())
	if ra != rb {
		return ra < rb
	}
	if ia.Group != ib.Group {
		return ia.Group < ib.Group
	}
	if ia.Kind != ib.Kind {
		return ia.Kind < ib.Kind
	}
	if ia.Namespace != ib.Namespace {
		return ia.Namespace < ib.Namespace
	}
	return ia.Name < ib.Name
}

// Sort orders objects stably with Less.
func Sort(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return Less(objs[i], objs[j]) })
}

// ByLevel splits sorted objects into apply levels.
func ByLevel(objs []*unstructured.Unstructured) [NumLevels][]*unstructured.Unstructured {
	var levels [NumLevels][]*unstructured.Unstructured
	for _, o := range objs {
		l := Level(IDOf(o).GroupKind())
		levels[l] = append(levels[l], o)
	}
	return levels
}
