package preflight

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

// fitNode is what placing pods needs of a node. Amounts are in the scheduler's units: CPU in
// millicores, everything else in whole units (bytes, pods, devices).
type fitNode struct {
	node          *corev1.Node // name and labels only: what node affinity matches on
	taints        []corev1.Taint
	unschedulable bool
	allocatable   map[corev1.ResourceName]int64
	// used: requests of the non-terminal pods bound to the node, except the app's own (they
	// are replaced by what the app places).
	used map[corev1.ResourceName]int64
	// avail is allocatable minus used minus what the placement put there so far, made on first
	// use: one map lookup per resource and node is what placement at scale costs.
	avail map[corev1.ResourceName]int64
	ports []hostPort
	// placedPorts: host ports of the pods the placement put there.
	placedPorts []hostPort
}

func (n *fitNode) free(r corev1.ResourceName) int64 {
	if n.avail == nil {
		n.avail = make(map[corev1.ResourceName]int64, len(n.allocatable)+len(n.used))
		for name, v := range n.allocatable {
			n.avail[name] = v
		}
		for name, v := range n.used {
			n.avail[name] -= v
		}
	}
	return n.avail[r]
}

// take reserves an amount of a resource on the node.
func (n *fitNode) take(r corev1.ResourceName, v int64) {
	n.free(r)
	n.avail[r] -= v
}

// hostPort is a port a pod takes on its node's network.
type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
}

// conflicts follows the scheduler's NodePorts rule: same protocol and port, and the same
// address or either one the wildcard.
func (p hostPort) conflicts(q hostPort) bool {
	wild := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return p.protocol == q.protocol && p.port == q.port && (p.ip == q.ip || wild(p.ip) || wild(q.ip))
}

// fitCluster is the nodes with the load that runs on them.
type fitCluster struct {
	nodes []*fitNode // sorted by name
	// heldPods counts the app's own running pods, counted as replaced rather than as load.
	heldPods int
}

// fitCollector builds a fitCluster from topnodes' node and pod hooks (nodes and pods are
// listed concurrently, so a pod may arrive before its node).
type fitCollector struct {
	held     func(*corev1.Pod) bool
	mu       sync.Mutex
	nodes    []*fitNode
	load     map[string]*podLoad
	heldPods int
}

type podLoad struct {
	used  map[corev1.ResourceName]int64
	ports []hostPort
}

func newFitCollector(held func(*corev1.Pod) bool) *fitCollector {
	return &fitCollector{held: held, load: map[string]*podLoad{}}
}

func (c *fitCollector) node(n *corev1.Node) {
	fn := &fitNode{
		node:          &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}},
		taints:        n.Spec.Taints,
		unschedulable: n.Spec.Unschedulable,
		allocatable:   amounts(n.Status.Allocatable),
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, fn)
	c.mu.Unlock()
}

func (c *fitCollector) pod(p *corev1.Pod) {
	if p.Spec.NodeName == "" {
		return // not bound: the scheduler does not count it against any node
	}
	if c.held != nil && c.held(p) {
		c.mu.Lock()
		c.heldPods++
		c.mu.Unlock()
		return
	}
	// Most pods have app containers only: their requests are the containers' sum, added
	// without building a ResourceList; the others go through the scheduler's own rule.
	var req corev1.ResourceList
	simple := len(p.Spec.InitContainers) == 0 && p.Spec.Overhead == nil && p.Spec.Resources == nil
	if !simple {
		req = resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
	}
	ports := podHostPorts(&p.Spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.load[p.Spec.NodeName]
	if l == nil {
		l = &podLoad{used: map[corev1.ResourceName]int64{}}
		c.load[p.Spec.NodeName] = l
	}
	if simple {
		for i := range p.Spec.Containers {
			for name, q := range p.Spec.Containers[i].Resources.Requests {
				l.used[name] += amount(name, q)
			}
		}
	}
	for name, q := range req {
		l.used[name] += amount(name, q)
	}
	l.used[corev1.ResourcePods]++
	l.ports = append(l.ports, ports...)
}

func (c *fitCollector) done() *fitCluster {
	sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].node.Name < c.nodes[j].node.Name })
	for _, n := range c.nodes {
		if l := c.load[n.node.Name]; l != nil {
			n.used, n.ports = l.used, l.ports
		} else {
			n.used = map[corev1.ResourceName]int64{}
		}
	}
	return &fitCluster{nodes: c.nodes, heldPods: c.heldPods}
}

// clusterState lists nodes and pods once per run for the gpu and fit checks.
type clusterState struct {
	gpu *topnodes.Snapshot
	fit *fitCluster
	err error
}

// cluster reads the nodes and the active pods once, for every check that needs them.
func (e *env) cluster(ctx context.Context) *clusterState {
	e.clusterOnce.Do(func() {
		ws, _ := e.workloads()
		owned := newOwnedPods(ws)
		col := newFitCollector(owned.owns)
		snap, err := topnodes.Collect(ctx, e.fast, topnodes.Options{
			ResourceNames: e.opts.GPUResourceNames, Held: owned.owns, Node: col.node, Pod: col.pod,
			ListNodes: e.snap.Nodes, ListNamespaces: e.snap.NamespaceNames,
		})
		e.state = &clusterState{gpu: snap, err: err}
		if err == nil {
			e.state.fit = col.done()
		}
	})
	return e.state
}

// workloads reads the app's workloads once; unreadable pod templates are findings.
func (e *env) workloads() ([]workload, []Finding) {
	e.workloadsOnce.Do(func() {
		for _, t := range e.resolved() {
			if t.err != nil {
				continue
			}
			w, ok, err := workloadOf(t.id, t.obj)
			if err != nil {
				e.workloadErrs = append(e.workloadErrs, Finding{Status: Warn, Finding: err.Error(), Remedy: "fix the manifest; its pods were not counted"})
				continue
			}
			if ok {
				e.ws = append(e.ws, w)
			}
		}
	})
	return e.ws, e.workloadErrs
}

// amount converts a quantity to the scheduler's unit for the resource.
func amount(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

func amounts(l corev1.ResourceList) map[corev1.ResourceName]int64 {
	out := make(map[corev1.ResourceName]int64, len(l))
	for name, q := range l {
		out[name] = amount(name, q)
	}
	return out
}

// podHostPorts lists the host ports a pod takes. With hostNetwork every container port is one
// (the API server defaults hostPort to containerPort; manifests are read before defaulting).
func podHostPorts(spec *corev1.PodSpec) []hostPort {
	var out []hostPort
	add := func(cs []corev1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				port := p.HostPort
				if port == 0 && spec.HostNetwork {
					port = p.ContainerPort
				}
				if port <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out = append(out, hostPort{protocol: proto, ip: p.HostIP, port: port})
			}
		}
	}
	add(spec.InitContainers)
	add(spec.Containers)
	return out
}

// Reasons a node is not a place for a pod, in the order the scheduler's filters run; the
// messages follow the scheduler's.
const (
	rankUnschedulable = iota
	rankTaint
	rankAffinity
	rankPorts
	rankResources
)

// reason is why one node does not fit one pod.
type reason struct {
	rank int
	text string
}

// podShape is a pod template as the scheduler sees it: requests after defaulting, host ports,
// required node affinity (with the nodeSelector) and tolerations.
type podShape struct {
	requests    map[corev1.ResourceName]int64
	names       []corev1.ResourceName // of requests, sorted
	ports       []hostPort
	affinity    nodeaffinity.RequiredNodeAffinity
	tolerations []corev1.Toleration
}

// shapeOf reads a pod template. Daemon pods get the tolerations the DaemonSet controller adds.
func shapeOf(spec *corev1.PodSpec, daemon bool) *podShape {
	s := staticShape(spec, daemon)
	s.ports = podHostPorts(spec)
	s.requests = map[corev1.ResourceName]int64{}
	pod := &corev1.Pod{Spec: *defaultRequests(spec)}
	for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
		if v := amount(name, q); v > 0 {
			s.requests[name] = v
		}
	}
	s.names = sortedNames(s.requests)
	return s
}

// staticShape is the part of a shape that staticReason needs.
func staticShape(spec *corev1.PodSpec, daemon bool) *podShape {
	s := &podShape{
		affinity:    nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity),
		tolerations: spec.Tolerations,
	}
	if daemon {
		s.tolerations = append(append([]corev1.Toleration(nil), spec.Tolerations...), daemonTolerations(spec.HostNetwork)...)
	}
	return s
}

// daemonTolerations are the tolerations the DaemonSet controller adds to its pods.
func daemonTolerations(hostNetwork bool) []corev1.Toleration {
	t := []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
	if hostNetwork {
		t = append(t, corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	return t
}

// defaultRequests copies a pod spec with each container's missing requests set to its limits,
// as the API server defaults them.
func defaultRequests(spec *corev1.PodSpec) *corev1.PodSpec {
	out := spec.DeepCopy()
	fill := func(cs []corev1.Container) {
		for i := range cs {
			r := &cs[i].Resources
			for name, q := range r.Limits {
				if _, ok := r.Requests[name]; !ok {
					if r.Requests == nil {
						r.Requests = corev1.ResourceList{}
					}
					r.Requests[name] = q
				}
			}
		}
	}
	fill(out.InitContainers)
	fill(out.Containers)
	return out
}

// staticReason is the first filter a node fails for a pod regardless of load: cordoned, an
// untolerated taint, node affinity or selector. ok is true when none fails.
func (s *podShape) staticReason(n *fitNode) (reason, bool) {
	if n.unschedulable && !corev1helpers.TolerationsTolerateTaint(logr.Discard(), s.tolerations,
		&corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}, true) {
		return reason{rankUnschedulable, "unschedulable"}, false
	}
	if t, found := untoleratedTaint(n.taints, s.tolerations); found {
		what := t.Key
		if t.Value != "" {
			what += "=" + t.Value
		}
		return reason{rankTaint, "untolerated taint " + what}, false
	}
	if ok, err := s.affinity.Match(n.node); err != nil || !ok {
		return reason{rankAffinity, "didn't match the pod's node affinity/selector"}, false
	}
	return reason{}, true
}

// loadReasons are the filters that depend on what runs on the node: host ports, then every
// resource short (the scheduler reports each insufficient resource).
func (s *podShape) loadReasons(n *fitNode) []reason {
	for _, p := range s.ports {
		for _, used := range [][]hostPort{n.ports, n.placedPorts} {
			for _, q := range used {
				if p.conflicts(q) {
					return []reason{{rankPorts, fmt.Sprintf("host port %d/%s in use", p.port, p.protocol)}}
				}
			}
		}
	}
	var out []reason
	if n.free(corev1.ResourcePods) < 1 {
		out = append(out, reason{rankResources, "Too many pods"})
	}
	for _, name := range s.names {
		if n.free(name) < s.requests[name] {
			out = append(out, reason{rankResources, "Insufficient " + string(name)})
		}
	}
	return out
}

// untoleratedTaint is the first NoSchedule or NoExecute taint the tolerations do not match.
func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration) (corev1.Taint, bool) {
	return corev1helpers.FindMatchingUntoleratedTaint(logr.Discard(), taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, true)
}

func sortedNames(m map[corev1.ResourceName]int64) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
