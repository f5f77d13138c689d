package topnodes

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func gpus(n string) corev1.ResourceList {
	return corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(n)}
}

func TestPodRequest(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want int64
	}{
		{"none", corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, 0},
		{"sum of containers", corev1.PodSpec{Containers: []corev1.Container{
			{Resources: corev1.ResourceRequirements{Requests: gpus("1")}},
			{Resources: corev1.ResourceRequirements{Requests: gpus("2")}},
		}}, 3},
		{"limit without request", corev1.PodSpec{Containers: []corev1.Container{
			{Resources: corev1.ResourceRequirements{Limits: gpus("2")}},
		}}, 2},
		{"init container larger", corev1.PodSpec{
			InitContainers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: gpus("4")}}},
			Containers:     []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: gpus("1")}}},
		}, 4},
		{"sidecar adds to containers", corev1.PodSpec{
			InitContainers: []corev1.Container{{RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: gpus("1")}}},
			Containers:     []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: gpus("2")}}},
		}, 3},
		{"init after sidecar", corev1.PodSpec{
			InitContainers: []corev1.Container{
				{RestartPolicy: &always, Resources: corev1.ResourceRequirements{Requests: gpus("1")}},
				{Resources: corev1.ResourceRequirements{Requests: gpus("3")}},
			},
			Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: gpus("1")}}},
		}, 4},
		{"overhead", corev1.PodSpec{
			Overhead:   gpus("1"),
			Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: gpus("1")}}},
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodRequest(&tc.spec, "nvidia.com/gpu"); got != tc.want {
				t.Errorf("PodRequest = %d, want %d", got, tc.want)
			}
		})
	}
}

func node(name, ip string, gpu string, labels map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if gpu != "" {
		n.Status.Allocatable = gpus(gpu)
	}
	return n
}

func pod(ns, name, nodeName string, phase corev1.PodPhase, gpu string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Spec.NodeName = nodeName
	p.Status.Phase = phase
	c := corev1.Container{Name: "c"}
	if gpu != "" {
		c.Resources.Requests = gpus(gpu)
	}
	p.Spec.Containers = []corev1.Container{c}
	return p
}

func TestCollect(t *testing.T) {
	objs := []runtime.Object{
		node("m1", "10.0.0.1", "", map[string]string{"node-role.kubernetes.io/control-plane": ""}),
		node("g1", "10.0.0.2", "2", nil),
		node("g2", "10.0.0.3", "4", map[string]string{"node-role.kubernetes.io/worker": ""}),
		pod("a", "running", "g1", corev1.PodRunning, "1"),
		pod("a", "pending-bound", "g2", corev1.PodPending, "2"),
		pod("a", "done", "g2", corev1.PodSucceeded, "2"),
		pod("a", "failed", "g1", corev1.PodFailed, "1"),
		pod("a", "unscheduled", "", corev1.PodPending, "3"),
		pod("b", "cpu-only", "g1", corev1.PodRunning, ""),
	}
	// Without Namespace objects pods are listed cluster-wide; with them, per namespace.
	namespaces := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
	}
	for _, perNamespace := range []bool{false, true} {
		t.Run(fmt.Sprintf("per-namespace=%v", perNamespace), func(t *testing.T) {
			all := objs
			if perNamespace {
				all = append(append([]runtime.Object{}, objs...), namespaces...)
			}
			checkSnapshot(t, fake.NewClientset(all...))
		})
	}
}

func checkSnapshot(t *testing.T, cs *fake.Clientset) {
	snap, err := Collect(context.Background(), cs, Options{Held: func(p *corev1.Pod) bool { return p.Name == "running" }})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Pods != 4 {
		t.Errorf("Pods = %d, want 4 non-terminal pods", snap.Pods)
	}
	if got := snap.Unscheduled["nvidia.com/gpu"]; got != 3 {
		t.Errorf("Unscheduled = %d, want 3", got)
	}
	byName := map[string]Node{}
	for _, n := range snap.Nodes {
		byName[n.Name] = n
	}
	if n := byName["g1"]; n.Allocatable["nvidia.com/gpu"] != 2 || n.Allocated["nvidia.com/gpu"] != 1 || n.Held["nvidia.com/gpu"] != 1 || n.Role != "worker" {
		t.Errorf("g1 = %+v, want 2 allocatable, 1 allocated and held, role worker", n)
	}
	if n := byName["g2"]; n.Allocated["nvidia.com/gpu"] != 2 || n.Held["nvidia.com/gpu"] != 0 {
		t.Errorf("g2 = %+v, want 2 allocated (the Succeeded pod does not count)", n)
	}
	if n := byName["m1"]; n.Role != "control-plane" || n.InternalIP != "10.0.0.1" {
		t.Errorf("m1 = %+v", n)
	}

}

func TestRole(t *testing.T) {
	for labels, want := range map[string]string{
		"":                               "worker",
		"node-role.kubernetes.io/master": "master",
		"kubernetes.io/role=gpu":         "gpu",
		"node-role.kubernetes.io/infra,node-role.kubernetes.io/control-plane": "control-plane,infra",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if got := Role(m); got != want {
			t.Errorf("Role(%s) = %q, want %q", labels, got, want)
		}
	}
}
