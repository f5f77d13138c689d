package preflight

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

const gpuRes = "nvidia.com/gpu"

// gpuNode is a Ready node with allocatable and allocated GPUs.
func gpuNode(name string, allocatable, allocated int64) topnodes.Node {
	return topnodes.Node{Name: name, Ready: true, Labels: map[string]string{},
		Allocatable: map[string]int64{gpuRes: allocatable}, Allocated: map[string]int64{gpuRes: allocated}, Held: map[string]int64{}}
}

func nodeSnapshot(nodes ...topnodes.Node) *topnodes.Snapshot {
	return &topnodes.Snapshot{ResourceNames: []string{gpuRes}, Nodes: nodes, Unscheduled: map[string]int64{}}
}

// gpuWorkload is a Deployment of replicas pods requesting per GPUs each.
func gpuWorkload(name string, replicas, per int64) workload {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}
	if per > 0 {
		spec.Containers[0].Resources.Limits = corev1.ResourceList{gpuRes: *resource.NewQuantity(per, resource.DecimalSI)}
	}
	return workload{id: manifest.ID{Group: "apps", Kind: "Deployment", Namespace: "kf", Name: name}, spec: spec, replicas: replicas}
}

func statuses(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, string(f.Status))
	}
	return strings.Join(s, ",")
}

func TestEvaluateGPUsFits(t *testing.T) {
	snap := nodeSnapshot(gpuNode("g1", 1, 1), gpuNode("g2", 1, 0), gpuNode("g3", 1, 0), gpuNode("g11", 1, 0), gpuNode("m1", 0, 0))
	fs := evaluateGPUs(snap, []workload{gpuWorkload("jupyter", 1, 1), gpuWorkload("web", 3, 0)})
	if statuses(fs) != "ok" {
		t.Fatalf("findings %+v, want one ok", fs)
	}
	want := "nvidia.com/gpu: 4 allocatable on 4 nodes, 1 allocated, 3 free; the app requests 1 in 1 pods (largest 1: kf/Deployment.apps/jupyter)"
	if fs[0].Finding != want {
		t.Errorf("finding %q\nwant %q", fs[0].Finding, want)
	}
}

func TestEvaluateGPUsLargestPodDoesNotFit(t *testing.T) {
	snap := nodeSnapshot(gpuNode("g1", 1, 0), gpuNode("g2", 1, 0))
	fs := evaluateGPUs(snap, []workload{gpuWorkload("trainer", 1, 2)})
	if statuses(fs) != "fail" {
		t.Fatalf("findings %+v, want one failure", fs)
	}
	if !strings.Contains(fs[0].Finding, "a pod of kf/Deployment.apps/trainer requests 2 nvidia.com/gpu; the most free on one schedulable node is 1") {
		t.Errorf("finding %q", fs[0].Finding)
	}
	if !strings.Contains(fs[0].Remedy, "at most 1") {
		t.Errorf("remedy %q", fs[0].Remedy)
	}
}

func TestEvaluateGPUsTotalDoesNotFit(t *testing.T) {
	snap := nodeSnapshot(gpuNode("g1", 1, 0), gpuNode("g2", 1, 1))
	fs := evaluateGPUs(snap, []workload{gpuWorkload("workers", 2, 1)})
	if statuses(fs) != "fail" || !strings.Contains(fs[0].Finding, "the app requests 2 nvidia.com/gpu in all; the cluster has 1 free") {
		t.Errorf("findings %+v", fs)
	}
}

func TestEvaluateGPUsFragmented(t *testing.T) {
	snap := nodeSnapshot(gpuNode("g1", 3, 0), gpuNode("g2", 1, 0))
	fs := evaluateGPUs(snap, []workload{gpuWorkload("pair", 2, 2)})
	if statuses(fs) != "warn,ok" {
		t.Errorf("findings %+v, want a packing warning and the summary", fs)
	}
}

func TestEvaluateGPUsCountsTheAppsOwnPodsAsFree(t *testing.T) {
	n := gpuNode("g1", 1, 1)
	n.Held[gpuRes] = 1 // the app's running notebook holds it; re-applying keeps that pod
	fs := evaluateGPUs(nodeSnapshot(n), []workload{gpuWorkload("jupyter", 1, 1)})
	if statuses(fs) != "ok" || !strings.Contains(fs[0].Finding, "1 held by this app's running pods") {
		t.Errorf("findings %+v", fs)
	}
}

func TestEvaluateGPUsUnusableNodes(t *testing.T) {
	labelled := gpuNode("k8s-nogpu", 0, 0)
	labelled.Labels = map[string]string{"nvidia.com/gpu.present": "true"}
	cordoned := gpuNode("cordoned", 1, 0)
	cordoned.Unschedulable = true
	tainted := gpuNode("tainted", 1, 0)
	tainted.Taints = []corev1.Taint{{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}}
	cpu := gpuNode("cpu", 0, 0)
	fs := evaluateGPUs(nodeSnapshot(labelled, cordoned, tainted, cpu), []workload{gpuWorkload("jupyter", 1, 0)})
	if statuses(fs) != "warn,warn,warn,ok" {
		t.Fatalf("findings %+v", fs)
	}
	if !strings.Contains(fs[0].Finding, "device plugin missing or unhealthy on k8s-nogpu") || !strings.Contains(fs[0].Remedy, "nvidia-device-plugin") {
		t.Errorf("device plugin finding %+v", fs[0])
	}
	if !strings.Contains(fs[1].Finding, "cordoned") || fs[1].Remedy != "kubectl uncordon cordoned" {
		t.Errorf("cordon finding %+v", fs[1])
	}
	if !strings.Contains(fs[2].Finding, "tainted dedicated=ml:NoSchedule") {
		t.Errorf("taint finding %+v", fs[2])
	}

	// A GPU pod that tolerates the taint can use the node: no warning, and it fits there.
	w := gpuWorkload("trainer", 1, 1)
	w.spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule}}
	fs = evaluateGPUs(nodeSnapshot(tainted), []workload{w})
	if statuses(fs) != "ok" {
		t.Errorf("tolerated taint: findings %+v", fs)
	}
	// Without the toleration the only GPU node is out of reach.
	fs = evaluateGPUs(nodeSnapshot(tainted), []workload{gpuWorkload("trainer", 1, 1)})
	if statuses(fs) != "warn,fail,fail" {
		t.Errorf("untolerated taint: findings %+v", fs)
	}
}

func TestEvaluateGPUsCapsNodeRows(t *testing.T) {
	var nodes []topnodes.Node
	for i := range 15 {
		n := gpuNode(fmt.Sprintf("n%02d", i), 0, 0)
		n.Labels = map[string]string{"feature.node.kubernetes.io/pci-10de.present": "true"}
		nodes = append(nodes, n)
	}
	fs := evaluateGPUs(nodeSnapshot(nodes...), nil)
	if len(fs) != maxNodeRows+2 || !strings.Contains(fs[maxNodeRows].Finding, "and 5 more") {
		t.Errorf("%d findings, want %d node rows, a summary row and the ok line: %+v", len(fs), maxNodeRows, fs)
	}
}

func TestEvaluateGPUsDaemonSet(t *testing.T) {
	d := gpuWorkload("exporter", 1, 1)
	d.daemon = true
	fs := evaluateGPUs(nodeSnapshot(gpuNode("g1", 1, 0), gpuNode("g2", 1, 1)), []workload{d})
	if statuses(fs) != "fail" || !strings.Contains(fs[0].Finding, "g2 has not enough free") {
		t.Errorf("findings %+v", fs)
	}
}

func TestWorkloadOfAndOwnedPods(t *testing.T) {
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "jupyter", "namespace": "kf"},
		"spec": map[string]any{"replicas": int64(3), "template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "c", "resources": map[string]any{"limits": map[string]any{gpuRes: int64(2)}}}},
		}}},
	}}
	w, ok, err := workloadOf(manifest.IDOf(dep), dep)
	if err != nil || !ok || w.replicas != 3 || topnodes.PodRequest(&w.spec, gpuRes) != 2 {
		t.Fatalf("workloadOf: %+v %v %v", w, ok, err)
	}
	owned := newOwnedPods([]workload{w})
	pod := func(kind, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kf", Name: "p",
			OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true)}}}}
	}
	if !owned.owns(pod("ReplicaSet", "jupyter-5d8f7c")) {
		t.Error("the Deployment's pod is not recognised")
	}
	if owned.owns(pod("ReplicaSet", "jupyter-extra-5d8f7c")) || owned.owns(pod("StatefulSet", "jupyter")) {
		t.Error("another workload's pod is taken for the app's")
	}
}
