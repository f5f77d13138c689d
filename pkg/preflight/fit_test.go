package preflight

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// node is a fitNode with cpu (cores), memory (Gi), 110 pods and optional GPUs.
func node(name string, cpu, memGi, gpus int64, labels map[string]string, taints ...corev1.Taint) *fitNode {
	if labels == nil {
		labels = map[string]string{}
	}
	alloc := map[corev1.ResourceName]int64{corev1.ResourceCPU: cpu * 1000, corev1.ResourceMemory: memGi << 30, corev1.ResourcePods: 110}
	if gpus > 0 {
		alloc[gpuRes] = gpus
	}
	return &fitNode{node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, taints: taints,
		allocatable: alloc, used: map[corev1.ResourceName]int64{}}
}

// using adds load that other pods put on the node.
func (n *fitNode) using(res corev1.ResourceName, v int64) *fitNode { n.used[res] += v; return n }

var controlPlane = corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}

// pods is a workload of kind with replicas pods requesting cpu and memory (Kubernetes
// quantities; "" for none).
func pods(kind, name string, replicas int64, cpu, mem string) workload {
	c := corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}
	if cpu != "" {
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	group := "apps"
	if kind == "Job" {
		group = "batch"
	}
	return workload{id: manifest.ID{Group: group, Kind: kind, Namespace: "kubeflow", Name: name},
		spec: corev1.PodSpec{Containers: []corev1.Container{c}}, replicas: replicas, daemon: kind == "DaemonSet"}
}

func with(w workload, f func(*corev1.PodSpec)) workload { f(&w.spec); return w }

func TestPlace(t *testing.T) {
	seven := func() []*fitNode {
		return []*fitNode{
			node("m1", 8, 16, 0, nil, controlPlane), node("m2", 8, 16, 0, nil, controlPlane), node("m3", 8, 16, 0, nil, controlPlane),
			node("g1", 8, 16, 1, nil), node("g2", 8, 16, 1, nil), node("g3", 8, 16, 1, nil), node("g11", 8, 16, 1, nil),
		}
	}
	cases := []struct {
		name   string
		nodes  []*fitNode
		ws     []workload
		want   []string // "status: finding" prefixes
		remedy string   // part of the first finding's remedy
	}{
		{
			name:  "everything fits",
			nodes: seven(),
			ws:    []workload{pods("Deployment", "web", 3, "500m", "1Gi"), pods("StatefulSet", "db", 1, "1", "2Gi")},
			want:  []string{"ok: all 4 pods of the app fit on the 7 nodes (they request cpu 2500m, memory 5Gi;"},
		},
		{
			name:   "20 CPUs fit nowhere: the scheduler's message",
			nodes:  seven(),
			ws:     []workload{pods("StatefulSet", "katib-mysql", 1, "20", "1Gi")},
			want:   []string{"fail: kubeflow/katib-mysql: 0/7 nodes fit: 3 untolerated taint node-role.kubernetes.io/control-plane, 4 Insufficient cpu"},
			remedy: "the pod requests cpu 20, memory 1Gi; the most free on a node it may use is cpu 8, memory 16Gi (g1)",
		},
		{
			name:   "nodeSelector no node has",
			nodes:  seven(),
			ws:     []workload{with(pods("Deployment", "ssd", 1, "100m", ""), func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"disktype": "ssd"} })},
			want:   []string{"fail: kubeflow/ssd: 0/7 nodes fit: 3 untolerated taint node-role.kubernetes.io/control-plane, 4 didn't match the pod's node affinity/selector"},
			remedy: "kubectl label node NODE disktype=ssd",
		},
		{
			name:  "required node affinity is evaluated",
			nodes: []*fitNode{node("a", 8, 16, 0, map[string]string{"zone": "a"}), node("b", 8, 16, 0, map[string]string{"zone": "b"})},
			ws: []workload{with(pods("Deployment", "zoned", 1, "100m", ""), func(s *corev1.PodSpec) {
				s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"c"}}}}}}}}
			})},
			want: []string{"fail: kubeflow/zoned: 0/2 nodes fit: 2 didn't match the pod's node affinity/selector"},
		},
		{
			name:  "tolerating the control-plane taint uses those nodes",
			nodes: seven(),
			ws: []workload{with(pods("Deployment", "big", 7, "7", ""), func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}}
			})},
			want: []string{"ok: all 7 pods of the app fit"},
		},
		{
			name:  "load already on the nodes counts; the replicas that do not fit fail",
			nodes: []*fitNode{node("a", 4, 16, 0, nil).using(corev1.ResourceCPU, 3000), node("b", 4, 16, 0, nil)},
			ws:    []workload{pods("Deployment", "web", 3, "2", "")},
			want:  []string{"fail: kubeflow/web (pod 3 of 3): 0/2 nodes fit once the app's other pods are placed: 2 Insufficient cpu; the 2 nodes it may use have cpu 1 free in all"},
		},
		{
			name:  "memory and GPUs are resources too",
			nodes: []*fitNode{node("a", 8, 4, 1, nil), node("b", 8, 16, 0, nil)},
			ws: []workload{with(pods("Deployment", "nb", 1, "1", "8Gi"), func(s *corev1.PodSpec) {
				s.Containers[0].Resources.Limits = corev1.ResourceList{gpuRes: resource.MustParse("1")} // request defaulted from the limit
			})},
			want: []string{"fail: kubeflow/nb: 0/2 nodes fit: 1 Insufficient memory, 1 Insufficient nvidia.com/gpu"},
		},
		{
			name:  "pod count",
			nodes: []*fitNode{node("a", 8, 16, 0, nil).using(corev1.ResourcePods, 110)},
			ws:    []workload{pods("Deployment", "web", 1, "", "")},
			want:  []string{"fail: kubeflow/web: 0/1 nodes fit: 1 Too many pods"},
		},
		{
			name:   "cordoned nodes",
			nodes:  []*fitNode{func() *fitNode { n := node("a", 8, 16, 0, nil); n.unschedulable = true; return n }()},
			ws:     []workload{pods("Deployment", "web", 1, "1", "")},
			want:   []string{"fail: kubeflow/web: 0/1 nodes fit: 1 unschedulable"},
			remedy: "kubectl uncordon",
		},
		{
			name:  "host ports: two replicas cannot share a node",
			nodes: []*fitNode{node("a", 8, 16, 0, nil)},
			ws: []workload{with(pods("Deployment", "proxy", 2, "100m", ""), func(s *corev1.PodSpec) {
				s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			})},
			want: []string{"warn: kubeflow/proxy (pod 2 of 2): 0/1 nodes fit once the app's other pods are placed: 1 host port 8080/TCP in use"},
		},
		{
			name: "host port taken by another pod",
			nodes: []*fitNode{func() *fitNode {
				n := node("a", 8, 16, 0, nil)
				n.ports = []hostPort{{corev1.ProtocolTCP, "", 9100}}
				return n
			}()},
			ws: []workload{with(pods("DaemonSet", "exporter", 0, "", ""), func(s *corev1.PodSpec) {
				s.HostNetwork = true
				s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100}}
			})},
			want: []string{"fail: kubeflow/exporter: a DaemonSet pod on each of 1 nodes; 0/1 of them fit: 1 host port 9100/TCP in use (a)"},
		},
		{
			name: "DaemonSet: one pod per eligible node, tolerating not-ready and cordons as its controller adds",
			nodes: []*fitNode{
				node("m1", 8, 16, 0, nil, controlPlane),
				node("w1", 8, 16, 0, nil, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}),
				func() *fitNode { n := node("w2", 8, 16, 0, nil); n.unschedulable = true; return n }(),
				node("w3", 1, 16, 0, nil).using(corev1.ResourceCPU, 900),
			},
			ws:   []workload{pods("DaemonSet", "agent", 0, "200m", "")},
			want: []string{"fail: kubeflow/agent: a DaemonSet pod on each of 3 nodes; 2/3 of them fit: 1 Insufficient cpu (w3)"},
		},
		{
			name:  "Job parallelism and zero replicas",
			nodes: []*fitNode{node("a", 2, 16, 0, nil)},
			ws:    []workload{pods("Job", "train", 3, "1", ""), pods("Deployment", "off", 0, "100", "")},
			want:  []string{"fail: kubeflow/train (pod 3 of 3): 0/1 nodes fit once the app's other pods are placed: 1 Insufficient cpu; the 1 nodes it may use have cpu 0 free in all"},
		},
		{
			name:  "init containers: the largest one counts when larger than the app containers",
			nodes: []*fitNode{node("a", 2, 16, 0, nil)},
			ws: []workload{with(pods("Deployment", "migrate", 1, "500m", ""), func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}}
			})},
			want: []string{"fail: kubeflow/migrate: 0/1 nodes fit: 1 Insufficient cpu"},
		},
		{
			name:  "pod overhead counts",
			nodes: []*fitNode{node("a", 1, 16, 0, nil)},
			ws: []workload{with(pods("Deployment", "sandboxed", 1, "900m", ""), func(s *corev1.PodSpec) {
				s.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
			})},
			want: []string{"fail: kubeflow/sandboxed: 0/1 nodes fit: 1 Insufficient cpu"},
		},
		{
			name:  "best fit packs a large pod after small ones",
			nodes: []*fitNode{node("a", 4, 16, 0, nil), node("b", 2, 16, 0, nil)},
			ws:    []workload{pods("Deployment", "small", 2, "1", ""), pods("Deployment", "large", 1, "4", "")},
			want:  []string{"ok: all 3 pods of the app fit"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantFindings(t, place(&fitCluster{nodes: tc.nodes}, tc.ws), tc.want, tc.remedy)
		})
	}
}

// The check end to end on a fake cluster: pods' requests are summed per node (terminal and
// unbound pods not), and the app's own running pods count as replaced.
func TestFitCheckCountsLoadAndReplacesTheAppsPods(t *testing.T) {
	cpu := func(v string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(v)}
	}
	nodeObj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")}}}
	pod := func(ns, name, node, req string, phase corev1.PodPhase, owner string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: cpu(req)}}}},
			Status: corev1.PodStatus{Phase: phase}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "StatefulSet", Name: owner, Controller: ptr.To(true)}}
		}
		return p
	}
	cs := fake.NewClientset(nodeObj,
		pod("other", "busy", "w1", "1", corev1.PodRunning, ""),
		pod("other", "done", "w1", "3", corev1.PodSucceeded, ""), // terminal: released
		pod("other", "pending", "", "3", corev1.PodPending, ""),  // not bound
		pod("kf", "db-0", "w1", "2", corev1.PodRunning, "db"),    // the app's own: replaced
	)
	sts := &unstructured.Unstructured{}
	spec := map[string]any{"replicas": int64(1), "template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": "c", "resources": map[string]any{"requests": map[string]any{"cpu": "3"}}}}}}}
	sts.Object = map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": map[string]any{"name": "db", "namespace": "kf"}, "spec": spec}
	e := testEnv(cs, sts)
	e.client.Mapper.(resettable).RESTMapper.(*meta.DefaultRESTMapper).Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, meta.RESTScopeNamespace)
	fs := (&fitCheck{e}).Run(context.Background())
	if len(fs) != 1 || fs[0].Status != OK || !strings.Contains(fs[0].Finding, "all 1 pods of the app fit") || !strings.Contains(fs[0].Finding, "1 running pods of the app counted as replaced") {
		t.Fatalf("findings %+v", fs)
	}

	// One more CPU elsewhere and the StatefulSet's pod no longer fits.
	_, _ = cs.CoreV1().Pods("other").Create(context.Background(), pod("other", "more", "w1", "1", corev1.PodRunning, ""), metav1.CreateOptions{})
	e = testEnv(cs, sts)
	e.client.Mapper.(resettable).RESTMapper.(*meta.DefaultRESTMapper).Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, meta.RESTScopeNamespace)
	fs = (&fitCheck{e}).Run(context.Background())
	if len(fs) != 1 || fs[0].Status != Fail || !strings.HasPrefix(fs[0].Finding, "kf/db: 0/1 nodes fit: 1 Insufficient cpu") {
		t.Fatalf("findings %+v", fs)
	}
}

// BenchmarkFitAtScale is the fit check's own work at 5,000 nodes and 50,000 pods: summing the
// pods' requests as they are listed, then placing an app with a DaemonSet and 20 Deployments.
func BenchmarkFitAtScale(b *testing.B) {
	nodes := make([]*corev1.Node, 5000)
	for i := range nodes {
		nodes[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n-%05d", i), Labels: map[string]string{"zone": fmt.Sprint(i % 3)}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"), corev1.ResourcePods: resource.MustParse("110")}}}
		if i%50 == 0 {
			nodes[i].Spec.Taints = []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}
		}
	}
	podsIn := make([]*corev1.Pod, 50000)
	for i := range podsIn {
		podsIn[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint(i)}, Spec: corev1.PodSpec{NodeName: nodes[i%5000].Name,
			Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}}}}}
	}
	ws := []workload{pods("DaemonSet", "agent", 0, "50m", "64Mi")}
	for i := 0; i < 20; i++ {
		ws = append(ws, pods("Deployment", fmt.Sprintf("web-%d", i), 3, "500m", "1Gi"))
	}
	b.ResetTimer()
	for b.Loop() {
		col := newFitCollector(nil)
		for _, n := range nodes {
			col.node(n)
		}
		for _, p := range podsIn {
			col.pod(p)
		}
		if fs := place(col.done(), ws); fs[0].Status != OK {
			b.Fatalf("findings %+v", fs)
		}
	}
}
