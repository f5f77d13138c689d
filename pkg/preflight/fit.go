package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// fitCheck places every pod the app will create on the live nodes as the scheduler's filters
// would: cordons, taints and tolerations, nodeSelector and required node affinity, host
// ports, and every requested resource (CPU, memory, GPUs and other extended resources, the
// pod count) against what the node has allocatable minus what already runs there. The app's
// own running pods count as replaced, not as load.
type fitCheck struct{ e *env }

func (c *fitCheck) Name() string { return "fit" }

func (c *fitCheck) Run(ctx context.Context) []Finding {
	ws, errs := c.e.workloads()
	findings := append([]Finding(nil), errs...)
	st := c.e.cluster(ctx)
	if st.err != nil {
		return append(findings, Finding{Status: Warn, Finding: fmt.Sprintf("cannot read nodes and pods: %v", st.err),
			Remedy: "grant list on nodes and pods cluster-wide to check where the app's pods fit"})
	}
	return append(findings, place(st.fit, ws)...)
}

// appPods is one workload's pods: how many, and their shape.
type appPods struct {
	w     *workload
	name  string // namespace/name, as the scheduler's events name pods
	shape *podShape
	// eligible: the nodes that pass the load-independent filters; rejected: why the others fail.
	eligible []*fitNode
	rejected map[reason]int
}

// place runs the placement and turns its failures into findings. DaemonSet pods go first, one
// on each node that should run one; then the other pods, largest first, each on the node that
// fits it with the least CPU left (best fit), as a sequence of scheduling decisions would.
func place(cl *fitCluster, ws []workload) []Finding {
	var daemons, others []*appPods
	for i := range ws {
		w := &ws[i]
		if !w.daemon && w.replicas <= 0 {
			continue
		}
		p := &appPods{w: w, name: w.id.Namespace + "/" + w.id.Name, shape: shapeOf(&w.spec, w.daemon), rejected: map[reason]int{}}
		for _, n := range cl.nodes {
			if r, ok := p.shape.staticReason(n); ok {
				p.eligible = append(p.eligible, n)
			} else {
				p.rejected[r]++
			}
		}
		if w.daemon {
			daemons = append(daemons, p)
		} else {
			others = append(others, p)
		}
	}
	sort.SliceStable(others, func(i, j int) bool { return larger(others[i].shape, others[j].shape) })

	var fails, warns []Finding
	total, placed := 0, 0
	demand := map[corev1.ResourceName]int64{}
	for _, p := range daemons {
		total += len(p.eligible)
		var short []string
		why := map[reason]int{}
		for _, n := range p.eligible {
			if rs := p.shape.loadReasons(n); len(rs) > 0 {
				short = append(short, n.node.Name)
				for _, r := range rs {
					why[r]++
				}
				continue
			}
			put(n, p.shape, demand)
			placed++
		}
		if len(short) > 0 {
			fails = append(fails, Finding{Status: Fail,
				Finding: fmt.Sprintf("%s: a DaemonSet pod on each of %d nodes; %d/%d of them fit: %s (%s)", p.name, len(p.eligible), len(p.eligible)-len(short), len(p.eligible), reasonList(why), nameList(short)),
				Remedy:  remedyFor(p, why)})
		}
	}
	for _, p := range others {
		for r := int64(0); r < p.w.replicas; r++ {
			total++
			if n := bestFit(p); n != nil {
				put(n, p.shape, demand)
				placed++
				continue
			}
			fails, warns = unplaced(cl, p, r, fails, warns)
			break // the remaining replicas fail for the same reasons
		}
	}

	findings := append(capRows(fails, "pods that fit no node"), capRows(warns, "pods that fit only alone")...)
	if len(findings) == 0 && total == 0 {
		findings = append(findings, Finding{Status: OK, Finding: "the app runs no pods"})
	} else if len(findings) == 0 {
		findings = append(findings, Finding{Status: OK, Finding: fitSummary(cl, total, demand)})
	}
	return findings
}

// unplaced explains a pod of p (replica r) that no node takes. A pod that fits no node even
// on the cluster as it is fails; one that fits alone but not once the app's other pods are
// placed fails too when the app asks for more than the nodes it may use have free, and is a
// warning otherwise (the scheduler may pack better than this placement).
func unplaced(cl *fitCluster, p *appPods, r int64, fails, warns []Finding) ([]Finding, []Finding) {
	why := map[reason]int{}
	for k, v := range p.rejected {
		why[k] = v
	}
	alone := false
	for _, n := range p.eligible {
		for _, rs := range p.shape.loadReasons(n) {
			why[rs]++
		}
		if len(p.shape.loadReasonsAlone(n)) == 0 {
			alone = true
		}
	}
	which := p.name
	if p.w.replicas > 1 {
		which = fmt.Sprintf("%s (pod %d of %d)", p.name, r+1, p.w.replicas)
	}
	f := Finding{Status: Fail, Remedy: remedyFor(p, why)}
	if !alone {
		f.Finding = fmt.Sprintf("%s: 0/%d nodes fit: %s", which, len(cl.nodes), reasonList(why))
		return append(fails, f), warns
	}
	f.Finding = fmt.Sprintf("%s: 0/%d nodes fit once the app's other pods are placed: %s", which, len(cl.nodes), reasonList(why))
	if over := overcommitted(p); over != "" {
		f.Finding += "; " + over
		return append(fails, f), warns
	}
	f.Status = Warn
	f.Remedy = "the app's pods fit in total but not in this packing; the scheduler may place them, or some may stay Pending: " + f.Remedy
	return fails, append(warns, f)
}

// overcommitted says which resource the nodes p may use have too little of in total.
func overcommitted(p *appPods) string {
	for _, name := range p.shape.names {
		var free int64
		for _, n := range p.eligible {
			free += max(0, n.free(name))
		}
		if free < p.shape.requests[name] {
			return fmt.Sprintf("the %d nodes it may use have %s %s free in all", len(p.eligible), name, format(name, free))
		}
	}
	return ""
}

// bestFit is the eligible node that fits the pod with the least CPU left, nil if none fits.
func bestFit(p *appPods) *fitNode {
	var best *fitNode
	var bestLeft int64
	for _, n := range p.eligible {
		if len(p.shape.loadReasons(n)) > 0 {
			continue
		}
		left := n.free(corev1.ResourceCPU) - p.shape.requests[corev1.ResourceCPU]
		if best == nil || left < bestLeft {
			best, bestLeft = n, left
		}
	}
	return best
}

// put reserves a pod's requests and host ports on a node.
func put(n *fitNode, s *podShape, demand map[corev1.ResourceName]int64) {
	for name, v := range s.requests {
		n.take(name, v)
		demand[name] += v
	}
	n.take(corev1.ResourcePods, 1)
	demand[corev1.ResourcePods]++
	n.placedPorts = append(n.placedPorts, s.ports...)
}

// loadReasonsAlone is loadReasons on the node as it is, without the placement's pods.
func (s *podShape) loadReasonsAlone(n *fitNode) []reason {
	alone := &fitNode{node: n.node, allocatable: n.allocatable, used: n.used, ports: n.ports}
	return s.loadReasons(alone)
}

// larger orders shapes for placement: more CPU first, then more memory.
func larger(a, b *podShape) bool {
	ac, bc := a.requests[corev1.ResourceCPU], b.requests[corev1.ResourceCPU]
	if ac != bc {
		return ac > bc
	}
	return a.requests[corev1.ResourceMemory] > b.requests[corev1.ResourceMemory]
}

// reasonList is the scheduler's "3 untolerated taint ..., 4 Insufficient cpu": reasons in
// the order its filters run, each with the number of nodes.
func reasonList(why map[reason]int) string {
	rs := make([]reason, 0, len(why))
	for r := range why {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].rank != rs[j].rank {
			return rs[i].rank < rs[j].rank
		}
		return rs[i].text < rs[j].text
	})
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d %s", why[r], r.text)
	}
	return strings.Join(parts, ", ")
}

// remedyFor says what to change, for each kind of reason that kept the pod off the nodes.
func remedyFor(p *appPods, why map[reason]int) string {
	ranks := map[int]bool{}
	for r := range why {
		ranks[r.rank] = true
	}
	kind := p.w.id.Kind
	var out []string
	if ranks[rankResources] {
		out = append(out, fmt.Sprintf("the pod requests %s; the most free on a node it may use is %s: lower the %s's requests or replicas, free room ('kfdeploy top nodes'), or add a node with room",
			requestList(p.shape.requests), mostFreeFor(p), kind))
	}
	if ranks[rankAffinity] {
		sel := selectorString(p.w.spec.NodeSelector)
		if sel != "" {
			out = append(out, fmt.Sprintf("no node it may use matches nodeSelector %s: label a node (kubectl label node NODE %s) or change the %s's nodeSelector", sel, strings.ReplaceAll(sel, ",", " "), kind))
		} else {
			out = append(out, fmt.Sprintf("no node matches the %s's required node affinity: label a node to match, or change the affinity", kind))
		}
	}
	if ranks[rankTaint] && len(p.eligible) == 0 && !ranks[rankAffinity] {
		out = append(out, fmt.Sprintf("add a toleration to the %s, or remove the taint from a node (kubectl taint node NODE KEY-)", kind))
	}
	if ranks[rankPorts] {
		out = append(out, "free the host port on a node, or change the pod's hostPort")
	}
	if ranks[rankUnschedulable] && len(p.eligible) == 0 {
		out = append(out, "uncordon a node (kubectl uncordon NODE)")
	}
	if len(out) == 0 {
		return "see 'kubectl describe nodes'"
	}
	return strings.Join(out, "; ")
}

// mostFreeFor names the eligible node with the most free CPU and what it has free of the
// resources the pod requests.
func mostFreeFor(p *appPods) string {
	var best *fitNode
	for _, n := range p.eligible {
		if best == nil || n.free(corev1.ResourceCPU) > best.free(corev1.ResourceCPU) {
			best = n
		}
	}
	if best == nil {
		return "nothing (no node passes its taints and selectors)"
	}
	free := map[corev1.ResourceName]int64{}
	for name := range p.shape.requests {
		free[name] = max(0, best.free(name))
	}
	return fmt.Sprintf("%s (%s)", requestList(free), best.node.Name)
}

func requestList(m map[corev1.ResourceName]int64) string {
	if len(m) == 0 {
		return "no resources"
	}
	var parts []string
	for _, name := range sortedNames(m) {
		parts = append(parts, string(name)+" "+format(name, m[name]))
	}
	return strings.Join(parts, ", ")
}

// format writes an amount like kubectl: cpu in cores or millicores, bytes in binary units.
func format(name corev1.ResourceName, v int64) string {
	switch {
	case name == corev1.ResourceCPU:
		return resource.NewMilliQuantity(v, resource.DecimalSI).String()
	case name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage || strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return fmt.Sprint(v)
}

func selectorString(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sel[k]
	}
	return strings.Join(parts, ",")
}

// fitSummary is the ok line: how many pods, what they request, what was free.
func fitSummary(cl *fitCluster, pods int, demand map[corev1.ResourceName]int64) string {
	free := map[corev1.ResourceName]int64{}
	for _, n := range cl.nodes {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			free[name] += max(0, n.allocatable[name]-n.used[name])
		}
	}
	req := map[corev1.ResourceName]int64{}
	for name, v := range demand {
		if name != corev1.ResourcePods {
			req[name] = v
		}
	}
	s := fmt.Sprintf("all %d pods of the app fit on the %d nodes (they request %s; cpu %s, memory %s were free)",
		pods, len(cl.nodes), requestList(req), format(corev1.ResourceCPU, free[corev1.ResourceCPU]), format(corev1.ResourceMemory, free[corev1.ResourceMemory]))
	if cl.heldPods > 0 {
		s += fmt.Sprintf("; %d running pods of the app counted as replaced", cl.heldPods)
	}
	return s
}
