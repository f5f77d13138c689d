package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

// gpuNodeLabels mark nodes that have GPUs whether or not a device plugin advertises them: the
// NVIDIA GPU operator's and node-feature-discovery's PCI vendor labels (10de NVIDIA, 1002 AMD).
var gpuNodeLabels = []struct{ key, value string }{
	{"nvidia.com/gpu.present", "true"},
	{"feature.node.kubernetes.io/pci-10de.present", "true"},
	{"feature.node.kubernetes.io/pci-1002.present", "true"},
	{"amd.com/gpu.present", "true"},
	{"nvidia.com/gpu.count", ""}, // any value
	{"cloud.google.com/gke-accelerator", ""},
}

// maxNodeRows bounds the per-node rows of one kind; the rest are summed up in one more row, so
// that a cluster of thousands of nodes still prints a readable report.
const maxNodeRows = 10

// gpuCheck compares the GPUs the app's pods request with what the nodes have free, and finds
// GPU nodes whose GPUs cannot be used.
type gpuCheck struct{ e *env }

func (c *gpuCheck) Name() string { return "gpu" }

func (c *gpuCheck) Run(ctx context.Context) []Finding {
	ws, _ := c.e.workloads() // unreadable templates are the fit check's findings
	st := c.e.cluster(ctx)
	if st.err != nil {
		return []Finding{{Status: Warn, Finding: fmt.Sprintf("cannot read nodes and pods: %v", st.err),
			Remedy: "grant list on nodes and pods cluster-wide to check GPUs, or compare by hand with 'kfdeploy top nodes'"}}
	}
	return evaluateGPUs(st.gpu, ws)
}

// gpuPod is one pod the app will run that requests GPUs of one resource.
type gpuPod struct {
	w   *workload
	gpu int64
}

// evaluateGPUs is the arithmetic of the check, apart from the cluster.
func evaluateGPUs(snap *topnodes.Snapshot, ws []workload) []Finding {
	var findings []Finding
	findings = append(findings, unusableGPUNodes(snap, ws)...)
	for _, name := range snap.ResourceNames {
		findings = append(findings, fitResource(snap, ws, name)...)
	}
	return findings
}

// fitResource checks one GPU resource: the largest pod fits on one node's free GPUs, all pods
// fit in the cluster's free GPUs, and (a warning) a first-fit packing places them all.
func fitResource(snap *topnodes.Snapshot, ws []workload, name string) []Finding {
	res := corev1.ResourceName(name)
	free := make([]int64, len(snap.Nodes))
	var allocatable, allocated, held, gpuNodes int64
	for i, n := range snap.Nodes {
		a := n.Allocatable[name]
		if a > 0 {
			gpuNodes++
		}
		allocatable += a
		allocated += n.Allocated[name]
		held += n.Held[name]
		free[i] = max(0, a-n.Allocated[name]+n.Held[name])
	}

	var pods []gpuPod
	var daemons []*workload
	var demand int64
	var largest *gpuPod
	for i := range ws {
		w := &ws[i]
		per := topnodes.PodRequest(&w.spec, res)
		if per == 0 {
			continue
		}
		if w.daemon {
			daemons = append(daemons, w)
			continue
		}
		for r := int64(0); r < w.replicas; r++ {
			pods = append(pods, gpuPod{w: w, gpu: per})
		}
		demand += per * w.replicas
		if w.replicas > 0 && (largest == nil || per > largest.gpu) {
			largest = &gpuPod{w: w, gpu: per}
		}
	}

	var findings []Finding
	// Daemon pods go to every node they fit, before anything else.
	for _, w := range daemons {
		per := topnodes.PodRequest(&w.spec, res)
		var short []string
		for i, n := range snap.Nodes {
			if !usable(&n, &w.spec) {
				continue
			}
			demand += per
			if free[i] < per {
				short = append(short, n.Name)
				continue
			}
			free[i] -= per
		}
		if len(short) > 0 {
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("%s runs a pod requesting %d %s on every node it fits; %s %s not enough free", w.id, per, name, nameList(short), isAre(len(short))),
				Remedy:  "restrict the DaemonSet with a nodeSelector to nodes with free GPUs, or free GPUs on those nodes"})
		}
	}

	// Free GPUs on nodes that some GPU pod of the app can use.
	var clusterFree int64
	for i, n := range snap.Nodes {
		for _, p := range pods {
			if usable(&n, &p.w.spec) {
				clusterFree += free[i]
				break
			}
		}
	}
	if largest != nil {
		best, bestNode := mostFree(snap, free, &largest.w.spec)
		if largest.gpu > best {
			where := "no schedulable node has any"
			if bestNode != "" {
				where = fmt.Sprintf("the most free on one schedulable node is %d (%s)", best, bestNode)
			}
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("a pod of %s requests %d %s; %s", largest.w.id, largest.gpu, name, where),
				Remedy:  fmt.Sprintf("lower the GPUs per pod of %s to at most %d, free GPUs ('kfdeploy top nodes'), or add a node with %d free %s", largest.w.id, best, largest.gpu, name)})
		}
	}
	if len(pods) > 0 && demand > clusterFree {
		findings = append(findings, Finding{Status: Fail,
			Finding: fmt.Sprintf("the app requests %d %s in all; the cluster has %d free where its pods can run (%d allocatable, %d allocated)", demand, name, clusterFree, allocatable, allocated-held),
			Remedy:  "lower replicas or GPUs per pod, free GPUs ('kfdeploy top nodes' shows who holds them), or add GPU nodes"})
	}
	if !anyFailed(findings) && len(pods) > 0 && !pack(snap, free, pods) {
		findings = append(findings, Finding{Status: Warn,
			Finding: fmt.Sprintf("the app's %d pods requesting %s fit in the free GPUs only in total: free GPUs are spread over nodes so that some pods may stay Pending", len(pods), name),
			Remedy:  "free GPUs on fewer nodes, or lower GPUs per pod"})
	}

	summary := fmt.Sprintf("%s: %d allocatable on %d nodes, %d allocated, %d free", name, allocatable, gpuNodes, allocated, allocatable-allocated)
	if held > 0 {
		summary += fmt.Sprintf(" (%d held by this app's running pods)", held)
	}
	if u := snap.Unscheduled[name]; u > 0 {
		summary += fmt.Sprintf("; %d more requested by pods waiting for a node", u)
	}
	switch {
	case demand == 0:
		summary += "; the app requests none"
	case largest != nil:
		summary += fmt.Sprintf("; the app requests %d in %d pods (largest %d: %s)", demand, len(pods), largest.gpu, largest.w.id)
	default:
		summary += fmt.Sprintf("; the app's DaemonSets request %d", demand)
	}
	if !anyFailed(findings) {
		findings = append(findings, Finding{Status: OK, Finding: summary})
	} else {
		// The failure rows say what is wrong; the numbers go with the first of them.
		findings[0].Finding += " [" + summary + "]"
	}
	return findings
}

// mostFree returns the node with the most free GPUs that a pod with this spec may use.
func mostFree(snap *topnodes.Snapshot, free []int64, spec *corev1.PodSpec) (int64, string) {
	var best int64
	bestNode := ""
	for i, n := range snap.Nodes {
		if usable(&n, spec) && (bestNode == "" || free[i] > best) {
			best, bestNode = free[i], n.Name
		}
	}
	return best, bestNode
}

// pack places pods, largest first, each on the usable node with the least room that fits it
// (best fit decreasing), on a copy of the free GPUs.
func pack(snap *topnodes.Snapshot, free []int64, pods []gpuPod) bool {
	room := append([]int64(nil), free...)
	sorted := append([]gpuPod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].gpu > sorted[j].gpu })
	for _, p := range sorted {
		best := -1
		for i, n := range snap.Nodes {
			if room[i] >= p.gpu && usable(&n, &p.w.spec) && (best < 0 || room[i] < room[best]) {
				best = i
			}
		}
		if best < 0 {
			return false
		}
		room[best] -= p.gpu
	}
	return true
}

// usable reports whether the scheduler may put a pod with this spec on the node, as far as
// readiness, cordons, taints, the nodeSelector and required node affinity go.
func usable(n *topnodes.Node, spec *corev1.PodSpec) bool {
	if !n.Ready {
		return false
	}
	fn := &fitNode{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}}, taints: n.Taints, unschedulable: n.Unschedulable}
	_, ok := staticShape(spec, false).staticReason(fn)
	return ok
}

// isGPUNode: a node advertises GPUs, or is labelled as having them.
func isGPUNode(n *topnodes.Node) bool {
	return topnodes.Total(n.Allocatable) > 0 || gpuLabel(n.Labels) != ""
}

// gpuLabel returns the first label that marks a node as a GPU node, as key=value.
func gpuLabel(labels map[string]string) string {
	for _, l := range gpuNodeLabels {
		v, ok := labels[l.key]
		if ok && (l.value == "" || v == l.value) {
			return l.key + "=" + v
		}
	}
	return ""
}

// unusableGPUNodes reports GPU nodes whose GPUs the app cannot use: no device plugin
// advertising them, cordoned, NotReady, or tainted against the app's GPU pods.
func unusableGPUNodes(snap *topnodes.Snapshot, ws []workload) []Finding {
	var gpuSpecs []*corev1.PodSpec
	for i := range ws {
		for _, name := range snap.ResourceNames {
			if topnodes.PodRequest(&ws[i].spec, corev1.ResourceName(name)) > 0 {
				gpuSpecs = append(gpuSpecs, &ws[i].spec)
				break
			}
		}
	}
	names := strings.Join(snap.ResourceNames, ", ")
	var noPlugin, blocked []Finding
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if !isGPUNode(n) {
			continue
		}
		if topnodes.Total(n.Allocatable) == 0 {
			noPlugin = append(noPlugin, Finding{Status: Warn,
				Finding: fmt.Sprintf("%s is labelled as a GPU node (%s) but advertises 0 %s: device plugin missing or unhealthy on %s", n.Name, gpuLabel(n.Labels), names, n.Name),
				Remedy:  fmt.Sprintf("enable the nvidia-device-plugin component (add it to spec.components, kfdeploy generate, apply), or check the device plugin pod on %s", n.Name)})
			continue
		}
		if reason, remedy := blockedReason(n, gpuSpecs); reason != "" {
			blocked = append(blocked, Finding{Status: Warn,
				Finding: fmt.Sprintf("GPU node %s (%d GPUs) is %s", n.Name, topnodes.Total(n.Allocatable), reason),
				Remedy:  remedy})
		}
	}
	return append(capRows(noPlugin, "GPU nodes advertise no GPUs"), capRows(blocked, "GPU nodes cannot run the app's GPU pods")...)
}

// blockedReason says why the app's GPU pods (or, without any, pods without tolerations) cannot
// use a GPU node; "" when they can.
func blockedReason(n *topnodes.Node, gpuSpecs []*corev1.PodSpec) (string, string) {
	switch {
	case n.Unschedulable:
		return "cordoned (unschedulable): its GPUs are not used", "kubectl uncordon " + n.Name
	case !n.Ready:
		return "NotReady: its GPUs are not used", "check the kubelet on " + n.Name + " (kubectl describe node " + n.Name + ")"
	}
	// Any toleration of any GPU pod of the app makes the node worth having.
	var tolerations []corev1.Toleration
	for _, s := range gpuSpecs {
		tolerations = append(tolerations, s.Tolerations...)
	}
	t, found := untoleratedTaint(n.Taints, tolerations)
	if !found {
		return "", ""
	}
	what := t.Key
	if t.Value != "" {
		what += "=" + t.Value
	}
	what += ":" + string(t.Effect)
	return "tainted " + what + ": the app's GPU pods do not tolerate it",
		fmt.Sprintf("remove the taint (kubectl taint node %s %s:%s-) or add a matching toleration to the GPU components", n.Name, t.Key, t.Effect)
}

// capRows keeps the first maxNodeRows rows and sums up the rest in one row.
func capRows(rows []Finding, what string) []Finding {
	if len(rows) <= maxNodeRows {
		return rows
	}
	rest := len(rows) - maxNodeRows
	out := append([]Finding(nil), rows[:maxNodeRows]...)
	return append(out, Finding{Status: rows[0].Status,
		Finding: fmt.Sprintf("and %d more %s (%d in all)", rest, what, len(rows)),
		Remedy:  "see 'kfdeploy top nodes' and 'kubectl get nodes' for the full list"})
}

// nameList writes at most a few names, then how many more.
func nameList(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

func isAre(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}
