// Package topnodes reads how many GPUs each node offers and how many its pods hold: the numbers
// behind `kfdeploy top nodes` and the GPU preflight check. It lists nodes and pods in pages,
// concurrently, and keeps only per-node sums, so a cluster of thousands of nodes and tens of
// thousands of pods is read in a few requests and little memory.
package topnodes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
)

// DefaultResourceName is the extended resource counted as a GPU unless told otherwise.
const DefaultResourceName = "nvidia.com/gpu"

// DefaultPageSize bounds each list response. Pods are listed per namespace (see podStreams),
// and a namespace's active pods usually fit in one page of this size. A first page is served
// from the API server's watch cache; a continued page is read from etcd by servers before
// v1.34, and by later ones whenever the watch cache keeps no snapshot at the list's revision
// (the benchmark's v1.37 cluster did, some minutes after it was loaded), which costs the
// server's storage layer about six times the CPU for the same pods (profiled at 50,000 pods
// in 50 namespaces: pages of 500 sent 50 of 104 requests to etcd, pages of 2,000 none of 54).
// Memory stays bounded: at most podListConcurrency streams, each holding a page and reading
// the next.
const DefaultPageSize = 2000

// activePods selects the pods the scheduler still counts against a node: terminal pods have
// released their devices.
const activePods = "status.phase!=Succeeded,status.phase!=Failed"

// Node is one node's GPU view.
type Node struct {
	Name          string
	InternalIP    string
	Role          string
	Labels        map[string]string
	Taints        []corev1.Taint
	Unschedulable bool
	Ready         bool
	// Allocatable, Allocated and Held are per GPU resource name. Held is the part of Allocated
	// that pods selected by Options.Held hold (for preflight: the app's own running pods).
	Allocatable map[string]int64
	Allocated   map[string]int64
	Held        map[string]int64
}

// Snapshot is the cluster's GPU state at one moment.
type Snapshot struct {
	ResourceNames []string
	Nodes         []Node // sorted by name
	// Unscheduled sums the GPUs that pods without a node request (they wait for room).
	Unscheduled map[string]int64
	// Pods counts the non-terminal pods read.
	Pods int
}

// Options tune Collect.
type Options struct {
	ResourceNames []string // default nvidia.com/gpu
	PageSize      int64    // default DefaultPageSize
	// Held, when set, marks pods whose GPUs are counted in Node.Held as well as in Allocated.
	Held func(*corev1.Pod) bool
	// Node and Pod, when set, see every listed node and every active pod as it is read, for
	// callers that need more of them than the GPU sums (preflight's placement) from the same
	// lists. Pod is called from several goroutines at once.
	Node func(*corev1.Node)
	Pod  func(*corev1.Pod)
	// ListNodes and ListNamespaces, when set, give the nodes and the names of the namespaces
	// from a read the caller made already (a command's one list of each), instead of listing
	// them again.
	ListNodes      func(context.Context) ([]corev1.Node, error)
	ListNamespaces func(context.Context) ([]string, error)
}

// Pod lists run as parallel streams, one per namespace, when there are few enough namespaces:
// the API server serves each list request on one goroutine and a continued list costs it more
// per page the more objects remain, so a few concurrent per-namespace lists use its cores and
// keep pages cheap. With many namespaces one cluster-wide list is cheaper than that many
// requests (and stays within the client's burst).
const (
	maxNamespaceStreams = 256
	podListConcurrency  = 4
)

// Collect lists nodes and active pods (concurrently, in pages) and sums the GPU requests of the
// pods per node.
func Collect(ctx context.Context, cs kubernetes.Interface, opts Options) (*Snapshot, error) {
	if len(opts.ResourceNames) == 0 {
		opts.ResourceNames = []string{DefaultResourceName}
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	snap := &Snapshot{ResourceNames: opts.ResourceNames, Unscheduled: map[string]int64{}}
	agg := &podSums{opts: opts, snap: snap, allocated: map[string]map[string]int64{}, held: map[string]map[string]int64{}}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		nodes, err := listNodes(gctx, cs, opts)
		if err != nil {
			return err
		}
		snap.Nodes = nodes
		return nil
	})
	g.Go(func() error {
		streams := podStreams(gctx, cs, opts)
		pg, pctx := errgroup.WithContext(gctx)
		pg.SetLimit(podListConcurrency)
		for _, ns := range streams {
			pg.Go(func() error { return agg.list(pctx, cs, ns) })
		}
		return pg.Wait()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		n.Allocated = orEmpty(agg.allocated[n.Name])
		n.Held = orEmpty(agg.held[n.Name])
	}
	return snap, nil
}

// podStreams returns the namespaces to list pods in, or [""] (all namespaces in one list) when
// there are many namespaces or they cannot be listed.
func podStreams(ctx context.Context, cs kubernetes.Interface, opts Options) []string {
	if opts.ListNamespaces != nil {
		names, err := opts.ListNamespaces(ctx)
		if err != nil || len(names) == 0 || len(names) > maxNamespaceStreams {
			return []string{""}
		}
		return names
	}
	var names []string
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return cs.CoreV1().Namespaces().List(ctx, opts)
	})
	p.PageSize = opts.PageSize
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		ns, ok := o.(*corev1.Namespace)
		if !ok {
			return fmt.Errorf("unexpected item %T", o)
		}
		names = append(names, ns.Name)
		if len(names) > maxNamespaceStreams {
			return errTooMany
		}
		return nil
	})
	if err != nil || len(names) == 0 {
		return []string{""} // many namespaces, or e.g. forbidden: listing pods cluster-wide may still be allowed
	}
	return names
}

// errTooMany stops the namespace list once one cluster-wide pod list is the cheaper way.
var errTooMany = errors.New("too many namespaces for one stream each")

// podSums adds up the GPU requests of pods per node while pages arrive, so no page is kept.
type podSums struct {
	opts Options
	mu   sync.Mutex
	snap *Snapshot
	// Per node name and resource: GPUs allocated, and the part held by Options.Held pods.
	allocated map[string]map[string]int64
	held      map[string]map[string]int64
}

// list pages through the active pods of a namespace ("" for all).
func (a *podSums) list(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return cs.CoreV1().Pods(namespace).List(ctx, opts)
	})
	p.PageSize = a.opts.PageSize
	p.PageBufferSize = 1 // one page read ahead: the sums keep nothing of a page once added
	err := p.EachListItem(ctx, metav1.ListOptions{FieldSelector: activePods}, func(o runtime.Object) error {
		pod, ok := o.(*corev1.Pod)
		if !ok {
			return fmt.Errorf("unexpected item %T", o)
		}
		a.add(pod)
		return nil
	})
	if err != nil {
		if namespace != "" {
			return fmt.Errorf("list pods in %s: %w", namespace, err)
		}
		return fmt.Errorf("list pods: %w", err)
	}
	return nil
}

func (a *podSums) add(pod *corev1.Pod) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return // a server without the field selector (or a fake) returns them
	}
	if a.opts.Pod != nil {
		a.opts.Pod(pod)
	}
	isHeld := a.opts.Held != nil && a.opts.Held(pod)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.snap.Pods++
	for _, name := range a.opts.ResourceNames {
		n := PodRequest(&pod.Spec, corev1.ResourceName(name))
		if n == 0 {
			continue
		}
		if pod.Spec.NodeName == "" {
			a.snap.Unscheduled[name] += n
			continue
		}
		addTo(a.allocated, pod.Spec.NodeName, name, n)
		if isHeld {
			addTo(a.held, pod.Spec.NodeName, name, n)
		}
	}
}

func addTo(m map[string]map[string]int64, node, name string, n int64) {
	if m[node] == nil {
		m[node] = map[string]int64{}
	}
	m[node][name] += n
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func listNodes(ctx context.Context, cs kubernetes.Interface, opts Options) ([]Node, error) {
	var nodes []Node
	if opts.ListNodes != nil {
		listed, err := opts.ListNodes(ctx)
		if err != nil {
			return nil, err
		}
		for i := range listed {
			if opts.Node != nil {
				opts.Node(&listed[i])
			}
			nodes = append(nodes, nodeOf(&listed[i], opts.ResourceNames))
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
		return nodes, nil
	}
	p := pager.New(func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
		return cs.CoreV1().Nodes().List(ctx, lo)
	})
	p.PageSize = opts.PageSize
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		n, ok := o.(*corev1.Node)
		if !ok {
			return fmt.Errorf("unexpected item %T", o)
		}
		if opts.Node != nil {
			opts.Node(n)
		}
		nodes = append(nodes, nodeOf(n, opts.ResourceNames))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// nodeOf keeps what the GPU view needs of a node, so the listed page can be dropped.
func nodeOf(n *corev1.Node, names []string) Node {
	out := Node{
		Name:          n.Name,
		Role:          Role(n.Labels),
		Labels:        n.Labels,
		Taints:        n.Spec.Taints,
		Unschedulable: n.Spec.Unschedulable,
		Allocatable:   map[string]int64{},
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && out.InternalIP == "" {
			out.InternalIP = a.Address
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, name := range names {
		if q, ok := n.Status.Allocatable[corev1.ResourceName(name)]; ok {
			out.Allocatable[name] = q.Value()
		}
	}
	return out
}

// Role is what kubectl shows as ROLES: the node-role.kubernetes.io/<role> labels (and the
// older kubernetes.io/role). A node without one is a worker: kubeadm labels only the control
// plane.
func Role(labels map[string]string) string {
	const prefix = "node-role.kubernetes.io/"
	var roles []string
	for k, v := range labels {
		switch {
		case strings.HasPrefix(k, prefix) && len(k) > len(prefix):
			roles = append(roles, strings.TrimPrefix(k, prefix))
		case k == "kubernetes.io/role" && v != "":
			roles = append(roles, v)
		}
	}
	if len(roles) == 0 {
		return "worker"
	}
	sort.Strings(roles)
	return strings.Join(dedupe(roles), ",")
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// Total sums a per-resource map over the resource names.
func Total(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}
