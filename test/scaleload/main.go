// Command scaleload fills a scratch cluster with fake GPU nodes (one in fifty tainted, in three
// zones) and pods bound to them (CPU and memory requests, an init container on one in ten, a
// host port on one in a hundred), for
// scripts/bench-preflight.sh: N nodes advertising GPUs and M pods spread over them (half of
// them requesting a GPU), created concurrently through client-go at a high QPS. Pods are bound
// with spec.nodeName, so the scheduler does no work, and tolerate every taint, so that the node
// lifecycle controller never evicts them while the nodes have no kubelet.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type options struct {
	nodes, pods, namespaces, gpusPerNode, concurrency int
	prefix                                            string
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 5000, "fake nodes to create")
	flag.IntVar(&o.pods, "pods", 50000, "pods to create, spread over the nodes")
	flag.IntVar(&o.namespaces, "namespaces", 50, "namespaces the pods are spread over")
	flag.IntVar(&o.gpusPerNode, "gpus-per-node", 8, "nvidia.com/gpu allocatable per node")
	flag.IntVar(&o.concurrency, "concurrency", 64, "requests in flight")
	flag.StringVar(&o.prefix, "prefix", "scale", "name prefix of nodes and namespaces")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "scaleload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// The server, not the client, should pace the load.
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := forEach(ctx, o.nodes, o.concurrency, func(ctx context.Context, i int) error { return createNode(ctx, cs, o, i) }); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	fmt.Printf("created %d nodes in %s\n", o.nodes, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	for i := 0; i < o.namespaces; i++ {
		if err := createNamespace(ctx, cs, fmt.Sprintf("%s-%03d", o.prefix, i)); err != nil {
			return err
		}
	}
	var made atomic.Int64
	err = forEach(ctx, o.pods, o.concurrency, func(ctx context.Context, i int) error {
		if err := createPod(ctx, cs, o, i); err != nil {
			return err
		}
		if n := made.Add(1); n%10000 == 0 {
			fmt.Printf("  %d pods (%s)\n", n, time.Since(start).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	fmt.Printf("created %d pods in %d namespaces in %s\n", o.pods, o.namespaces, time.Since(start).Round(time.Millisecond))
	return nil
}

// forEach runs fn for 0..n-1 with at most limit in flight; the first error stops it.
func forEach(ctx context.Context, n, limit int, fn func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

func nodeName(o options, i int) string { return fmt.Sprintf("%s-node-%05d", o.prefix, i) }

func createNode(ctx context.Context, cs kubernetes.Interface, o options, i int) error {
	name := nodeName(o, i)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"kubernetes.io/hostname": name, "nvidia.com/gpu.present": "true", "node-role.kubernetes.io/worker": "",
		"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3),
	}}}
	// One node in fifty is dedicated (tainted), as node pools for other teams are.
	if i%50 == 0 {
		n.Spec.Taints = []corev1.Taint{{Key: "bench.kfdeploy.dev/dedicated", Value: "other", Effect: corev1.TaintEffectNoSchedule}}
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods: resource.MustParse("110"), "nvidia.com/gpu": *resource.NewQuantity(int64(o.gpusPerNode), resource.DecimalSI),
	}
	status := corev1.NodeStatus{
		Capacity: res, Allocatable: res,
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256)}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Bench", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	// A patch of the status subresource: controllers (taints) update new nodes concurrently,
	// and a patch does not conflict with them as an update would.
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func createNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	// Pod admission wants the namespace's default ServiceAccount, which a controller creates.
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func createPod(ctx context.Context, cs kubernetes.Interface, o options, i int) error {
	ns := fmt.Sprintf("%s-%03d", o.prefix, i%o.namespaces)
	c := corev1.Container{Name: "work", Image: "registry.invalid/bench:1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}}
	// Some pods take a host port, which preflight's placement checks against the app's.
	if i%100 == 1 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}}
	}
	if i%2 == 0 {
		gpu := corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		c.Resources.Requests["nvidia.com/gpu"] = gpu["nvidia.com/gpu"]
		c.Resources.Limits = gpu
	}
	no := false
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%06d", i), Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName(o, i%o.nodes),
			Containers:                   []corev1.Container{c},
			InitContainers:               initContainers(i),
			AutomountServiceAccountToken: &no,
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
	for attempt := 0; ; attempt++ {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return nil
		case attempt < 5 && (apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded)):
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		default:
			return fmt.Errorf("pod %s/%s: %w", ns, p.Name, err)
		}
	}
}

// initContainers gives every tenth pod an init container larger than its app container, so
// that the scheduler's max(init, sum of app containers) rule is part of what is summed.
func initContainers(i int) []corev1.Container {
	if i%10 != 0 {
		return nil
	}
	return []corev1.Container{{Name: "setup", Image: "registry.invalid/bench:1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}}
}
