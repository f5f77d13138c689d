package preflight

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Supported Kubernetes versions (minor): older servers lack APIs kfdeploy uses (server-side
// apply of status-less objects, the ApplySet labels tooling); newer ones are not tested yet.
const (
	MinMinor = 29
	MaxMinor = 37
)

// Options say what to check.
type Options struct {
	App     *config.App
	Objects []*unstructured.Unstructured // the app's generated manifests
	// Files names the file of each object (by manifest.IDOf), for findings: "manifests/x.yaml".
	Files map[manifest.ID]string
	// GPUResourceNames are the extended resources counted as GPUs (default: the app's).
	GPUResourceNames []string
	// NFS, when set, lets the nfs check create PersistentVolumes for claims that cannot bind.
	NFS *config.NFS
	// DryRun: create nothing, report what would be created (apply --dry-run).
	DryRun bool
	// Snapshot is what the command reads of the cluster, shared with the apply that follows
	// (nil: preflight reads for itself). It must be of the same app and Objects.
	Snapshot *engine.Snapshot
}

// env is what the checks of one run share: the clients, the options, and what more than one
// check derives from the manifests (computed once, on first use).
type env struct {
	client *kube.Client
	// snap is every read of the app's objects, namespaces and nodes, made once for the run.
	snap *engine.Snapshot
	// fast is a protobuf clientset for the large lists (pods, nodes, PVs).
	fast kubernetes.Interface
	opts Options
	app  string
	ns   string

	targetsOnce sync.Once
	targets     []target

	storageOnce sync.Once
	storage     *storagePlan

	workloadsOnce sync.Once
	ws            []workload
	workloadErrs  []Finding

	clusterOnce sync.Once
	state       *clusterState
}

// New returns the checks, in their fixed order, for an app against a cluster.
func New(c *kube.Client, opts Options) ([]Check, error) {
	if opts.App == nil {
		return nil, fmt.Errorf("preflight: no app")
	}
	return newChecks(c, c.Fast, opts), nil
}

// newChecks builds the fixed-order list; tests pass fake clients.
func newChecks(c *kube.Client, fast kubernetes.Interface, opts Options) []Check {
	if len(opts.GPUResourceNames) == 0 {
		opts.GPUResourceNames = opts.App.GPUResourceNames()
	}
	e := &env{client: c, fast: fast, opts: opts, app: opts.App.Metadata.Name, ns: opts.App.Spec.Namespace, snap: opts.Snapshot}
	if e.snap == nil {
		e.snap = engine.NewSnapshot(c, inventory.ApplySet{App: e.app, Namespace: e.ns}, opts.Objects, snapshot.Options{})
	}
	return []Check{
		&clusterCheck{e},
		&apisCheck{e},
		&permissionsCheck{e},
		&gpuCheck{e},
		&fitCheck{e},
		&storageCheck{e},
		&nfsCheck{env: e},
		&namespaceCheck{e},
		&pullSecretsCheck{e},
		&upgradeCheck{e},
	}
}

// target is a manifest object with its resource resolved.
type target struct {
	obj        *unstructured.Unstructured
	id         manifest.ID // namespace filled in for namespaced kinds
	gvr        schema.GroupVersionResource
	namespaced bool
	// fromCRD: the kind is defined by a CRD of the app itself that the cluster does not serve
	// yet; it was mapped from the CRD's spec.
	fromCRD bool
	err     error
}

// resolved maps every manifest object to its resource once per run.
func (e *env) resolved() []target {
	e.targetsOnce.Do(func() {
		crds := appCRDs(e.opts.Objects)
		for _, o := range e.opts.Objects {
			e.targets = append(e.targets, e.resolve(o, crds))
		}
	})
	return e.targets
}

func (e *env) resolve(o *unstructured.Unstructured, crds map[schema.GroupKind]crdResource) target {
	gvk := o.GroupVersionKind()
	t := target{obj: o, id: manifest.IDOf(o)}
	var m *meta.RESTMapping
	var err error
	if crd, ok := crds[gvk.GroupKind()]; ok {
		if m, err = e.client.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			t.gvr = schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: crd.plural}
			t.namespaced, t.fromCRD = crd.namespaced, true
		}
	} else {
		m, err = e.client.Mapping(gvk)
		if err != nil {
			t.err = err
			return t
		}
	}
	if m != nil {
		t.gvr = m.Resource
		t.namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
	}
	t.id = t.id.Scoped(t.namespaced, e.ns)
	return t
}

type crdResource struct {
	plural     string
	namespaced bool
}

// appCRDs indexes the CRDs among the manifests by the kind they define.
func appCRDs(objs []*unstructured.Unstructured) map[schema.GroupKind]crdResource {
	out := map[schema.GroupKind]crdResource{}
	for _, o := range objs {
		if !manifest.IDOf(o).IsCRD() {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		out[schema.GroupKind{Group: group, Kind: kind}] = crdResource{plural: plural, namespaced: scope != "Cluster"}
	}
	return out
}

// namespaces lists the namespaces the app's objects live in, the app's own first.
func (e *env) namespaces() []string {
	seen := map[string]bool{e.ns: true}
	out := []string{e.ns}
	for _, t := range e.resolved() {
		ns := t.id.Namespace
		if t.id.IsNamespace() {
			ns = t.id.Name
		}
		if ns != "" && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	return out
}
