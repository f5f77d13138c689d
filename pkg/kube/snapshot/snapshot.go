// Package snapshot is the one set of reads of the cluster per command: each list made once, on
// first use, and kept for the rest of the command.
package snapshot

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/pager"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Snapshot is what one command reads of the cluster for one app, each read made once and kept
// for the rest of the command: the inventory, every object of each resource and namespace the
// app has or had (one paginated list each, read on first use) and the nodes. Preflight's checks
// and apply's plan and wait all read through one Snapshot (the engine's Snapshot adds the app's
// desired objects), so that nothing is listed twice and nothing is read object by object where
// a list serves.
//
// The lists are not narrowed to the app's label: the same list that finds the app's members
// finds objects of the same names that another owner holds (preflight's namespace check), and
// the claims of StatefulSets, which carry no label of the app.
//
// What is read is what the cluster held at the time of the read; a command that writes
// something a later read depends on calls Forget for it.
type Snapshot struct {
	c   *kube.Client
	set inventory.ApplySet
	// whole lists whole objects rather than their metadata, so that the wait can judge the
	// readiness of the objects the plan leaves unchanged without reading them again.
	whole     bool
	mu        sync.Mutex
	lists     map[listKey]*listing
	inventory memo[inventory.Record]
	parents   memo[inventory.Parents]
	nodes     memo[[]corev1.Node]
}

// Options tune what a Snapshot reads.
type Options struct {
	// Status: list whole objects (with their status) instead of metadata only, for a run that
	// waits for readiness.
	Status bool
}

// New prepares the reads of one command about the app s. Nothing is read until it is asked for.
func New(c *kube.Client, s inventory.ApplySet, opts Options) *Snapshot {
	return &Snapshot{c: c, set: s, whole: opts.Status, lists: map[listKey]*listing{}}
}

// Client is the client the snapshot reads with.
func (s *Snapshot) Client() *kube.Client { return s.c }

// Set is the app the snapshot reads about.
func (s *Snapshot) Set() inventory.ApplySet { return s.set }

// memo is a value computed once, on first use.
type memo[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (m *memo[T]) get(f func() (T, error)) (T, error) {
	m.once.Do(func() { m.v, m.err = f() })
	return m.v, m.err
}

// listKey names one list: a resource (any version) in a namespace ("" for all of a
// cluster-scoped resource).
type listKey struct {
	resource  schema.GroupResource
	namespace string
}

// listing is one list's objects by name.
type listing struct {
	once   sync.Once
	read   atomic.Bool // byName and err are set
	byName map[string]*LiveObject
	err    error
}

// LiveObject is one listed object: its metadata, and the whole object when the list read
// whole objects.
type LiveObject struct {
	Meta metav1.ObjectMeta
	// Object is nil when only metadata was read.
	Object *unstructured.Unstructured
}

// wholeResources are always read whole: what is read of them is their status (a namespace's
// phase, a claim's binding), and they are small.
var wholeResources = map[schema.GroupResource]bool{
	{Resource: "namespaces"}:             true,
	{Resource: "persistentvolumeclaims"}: true,
}

// List returns every object of a resource in a namespace, by name, reading them on first use.
// A namespace that does not exist has no objects.
func (s *Snapshot) List(ctx context.Context, gvr schema.GroupVersionResource, namespace string) (map[string]*LiveObject, error) {
	k := listKey{resource: gvr.GroupResource(), namespace: namespace}
	s.mu.Lock()
	l := s.lists[k]
	if l == nil {
		l = &listing{}
		s.lists[k] = l
	}
	s.mu.Unlock()
	l.once.Do(func() {
		l.byName, l.err = s.read(ctx, gvr, namespace, s.whole || wholeResources[k.resource])
		if l.err != nil {
			l.err = fmt.Errorf("list %s in %q: %w", gvr.GroupResource(), namespace, l.err)
		}
		l.read.Store(true)
	})
	return l.byName, l.err
}

// Get returns one object from its resource's list (nil when it does not exist).
func (s *Snapshot) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*LiveObject, error) {
	objs, err := s.List(ctx, gvr, namespace)
	if err != nil {
		return nil, err
	}
	return objs[name], nil
}

// Forget drops what was read of a resource, so that the next use reads it again: for a run
// that wrote objects of that resource after they were read.
func (s *Snapshot) Forget(resource schema.GroupResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.lists {
		if k.resource == resource {
			delete(s.lists, k)
		}
	}
}

// CachedList returns a list read earlier, without reading anything (false when it was not
// read, or not whole).
func (s *Snapshot) CachedList(resource schema.GroupResource, namespace string) (map[string]*LiveObject, bool) {
	s.mu.Lock()
	l := s.lists[listKey{resource: resource, namespace: namespace}]
	s.mu.Unlock()
	if l == nil || !l.read.Load() || l.err != nil {
		return nil, false
	}
	for _, o := range l.byName {
		if o.Object == nil {
			return nil, false
		}
	}
	return l.byName, true
}

// Cached returns an object read earlier, without reading anything (nil when its list was not
// read or it was not in it).
func (s *Snapshot) Cached(resource schema.GroupResource, namespace, name string) *LiveObject {
	s.mu.Lock()
	l := s.lists[listKey{resource: resource, namespace: namespace}]
	s.mu.Unlock()
	if l == nil || !l.read.Load() || l.err != nil {
		return nil
	}
	return l.byName[name]
}

// read lists a resource in a namespace in pages, whole or as metadata.
func (s *Snapshot) read(ctx context.Context, gvr schema.GroupVersionResource, namespace string, whole bool) (map[string]*LiveObject, error) {
	out := map[string]*LiveObject{}
	if typed := s.typedList(gvr.GroupResource(), namespace); typed != nil {
		return out, s.readTyped(ctx, typed, out)
	}
	if !whole {
		err := s.c.EachMetadata(ctx, gvr, namespace, "", func(m *metav1.PartialObjectMetadata) {
			out[m.Name] = &LiveObject{Meta: m.ObjectMeta}
		})
		return out, err
	}
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return s.c.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, opts)
	})
	p.PageSize = kube.ListPageSize
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("unexpected item %T", o)
		}
		m, err := objectMeta(u)
		if err != nil {
			return err
		}
		out[u.GetName()] = &LiveObject{Meta: m, Object: u}
		return nil
	})
	return out, err
}

// typedList is the protobuf list of the core kinds that are always read whole (nil for the
// others).
func (s *Snapshot) typedList(gr schema.GroupResource, namespace string) pager.ListPageFunc {
	switch gr {
	case schema.GroupResource{Resource: "namespaces"}:
		return func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return s.c.Fast.CoreV1().Namespaces().List(ctx, opts)
		}
	case schema.GroupResource{Resource: "persistentvolumeclaims"}:
		return func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return s.c.Fast.CoreV1().PersistentVolumeClaims(namespace).List(ctx, opts)
		}
	}
	return nil
}

// readTyped pages through a typed list and keeps each object whole, as unstructured.
func (s *Snapshot) readTyped(ctx context.Context, list pager.ListPageFunc, out map[string]*LiveObject) error {
	p := pager.New(list)
	p.PageSize = kube.ListPageSize
	return p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		acc, err := meta.Accessor(o)
		if err != nil {
			return err
		}
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: raw}
		gvks, _, err := clientgoscheme.Scheme.ObjectKinds(o)
		if err == nil && len(gvks) > 0 {
			u.SetGroupVersionKind(gvks[0])
		}
		m, err := objectMeta(u)
		if err != nil {
			return err
		}
		out[acc.GetName()] = &LiveObject{Meta: m, Object: u}
		return nil
	})
}

// objectMeta converts the metadata of a whole object.
func objectMeta(u *unstructured.Unstructured) (metav1.ObjectMeta, error) {
	var m metav1.ObjectMeta
	raw, _ := u.Object["metadata"].(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &m); err != nil {
		return m, fmt.Errorf("read metadata of %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return m, nil
}

// Inventory reads the app's inventory once.
func (s *Snapshot) Inventory(ctx context.Context) (inventory.Record, error) {
	return s.inventory.get(func() (inventory.Record, error) { return inventory.Read(ctx, s.c, s.set) })
}

// Parents reads the inventories of every kfdeploy app of the cluster once (see
// inventory.ReadParents).
func (s *Snapshot) Parents(ctx context.Context) (inventory.Parents, error) {
	return s.parents.get(func() (inventory.Parents, error) { return inventory.ReadParents(ctx, s.c) })
}

var namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// Namespace reads a namespace from the one list of namespaces (nil when it does not exist).
// Without permission to list namespaces, it is read by name.
func (s *Snapshot) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	o, err := s.Get(ctx, namespacesResource, "", name)
	if apierrors.IsForbidden(err) {
		ns, getErr := s.c.Typed.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(getErr) {
			return nil, nil
		}
		return ns, getErr
	}
	if err != nil || o == nil {
		return nil, err
	}
	var ns corev1.Namespace
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &ns); err != nil {
		return nil, fmt.Errorf("read namespace %s: %w", name, err)
	}
	return &ns, nil
}

// NamespaceNames lists the names of every namespace, from the one list of namespaces.
func (s *Snapshot) NamespaceNames(ctx context.Context) ([]string, error) {
	all, err := s.List(ctx, namespacesResource, "")
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(all)), nil
}

// Nodes lists the cluster's nodes once (protobuf, in pages).
func (s *Snapshot) Nodes(ctx context.Context) ([]corev1.Node, error) {
	return s.nodes.get(func() ([]corev1.Node, error) {
		var nodes []corev1.Node
		p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return s.c.Fast.CoreV1().Nodes().List(ctx, opts)
		})
		p.PageSize = kube.ListPageSize
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
			n, ok := o.(*corev1.Node)
			if !ok {
				return fmt.Errorf("unexpected item %T", o)
			}
			// Kept for the run: what no reader uses (the images a node holds, managed fields)
			// is dropped, which at thousands of nodes is most of their size.
			n.Status.Images, n.ManagedFields = nil, nil
			nodes = append(nodes, *n)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		return nodes, nil
	})
}

// Members finds the app's members of the given kinds in the given namespaces (the inventory's)
// in the snapshot's lists: the objects labelled as part of the set.
func (s *Snapshot) Members(ctx context.Context, kinds []schema.GroupKind, namespaces []string) (map[manifest.ID]inventory.Member, error) {
	reads, err := inventory.MemberLists(s.c, kinds, namespaces)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range reads {
		g.Go(func() error {
			_, err := s.List(gctx, r.Mapping.Resource, r.Namespace)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	id := s.set.ID()
	found := map[manifest.ID]inventory.Member{}
	for _, r := range reads {
		objs, err := s.List(ctx, r.Mapping.Resource, r.Namespace)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.Meta.Labels[inventory.LabelPartOf] != id {
				continue
			}
			mid := manifest.ID{Group: r.GroupKind.Group, Kind: r.GroupKind.Kind, Namespace: o.Meta.Namespace, Name: o.Meta.Name}
			found[mid] = inventory.Member{ID: mid, Mapping: r.Mapping, Meta: o.Meta}
		}
	}
	return found, nil
}
