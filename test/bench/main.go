// Command bench measures kfdeploy apply and delete against, in the same run on the same
// cluster, kubectl apply --server-side and a bare client-go server-side-apply loop with the same
// concurrency (the floor). Each run uses a fresh namespace. Run it through `make bench`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

type options struct {
	kfdeploy, kubectl, kubeconfig string
	sizes                         []int
	concurrency                   int
	passes                        int
	work                          string
}

func main() {
	var o options
	var sizes string
	flag.StringVar(&o.kfdeploy, "kfdeploy", "bin/kfdeploy", "kfdeploy binary")
	flag.StringVar(&o.kubectl, "kubectl", os.Getenv("KFDEPLOY_KUBECTL"), "kubectl binary (the cluster's version)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	flag.StringVar(&sizes, "sizes", "1000,5000", "app sizes in objects")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrency of kfdeploy and of the client-go floor")
	flag.StringVar(&o.work, "work", "_out/bench", "working directory")
	flag.IntVar(&o.passes, "passes", 2, "passes over the clients, in alternating order; the best time counts")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			fmt.Fprintf(os.Stderr, "error: -sizes %q: want numbers of objects >= 3\n", sizes)
			os.Exit(1)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// measurement is one timed command.
type measurement struct {
	seconds float64
	maxRSS  int64 // KiB; 0 when not a separate process
}

func run(ctx context.Context, o options) error {
	if o.kubectl == "" || o.kubeconfig == "" {
		return errors.New("set KUBECONFIG and KFDEPLOY_KUBECTL (eval \"$(scripts/testcluster.sh env)\")")
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	fmt.Printf("%-7s %-28s %9s %9s\n", "objects", "run", "seconds", "peak MiB")
	var summary []string
	for _, n := range o.sizes {
		res, err := benchSize(ctx, o, n)
		if err != nil {
			return fmt.Errorf("%d objects: %w", n, err)
		}
		for _, name := range []string{"client-go SSA loop (floor)", "kubectl apply --server-side", "kfdeploy apply", "kfdeploy apply (no-op)", "kfdeploy delete"} {
			m := res[name]
			rss := "-"
			if m.maxRSS > 0 {
				rss = fmt.Sprintf("%.0f", float64(m.maxRSS)/1024)
			}
			fmt.Printf("%-7d %-28s %9.2f %9s\n", n, name, m.seconds, rss)
		}
		floor, kubectl, apply := res["client-go SSA loop (floor)"].seconds, res["kubectl apply --server-side"].seconds, res["kfdeploy apply"].seconds
		summary = append(summary, fmt.Sprintf("%d objects: kfdeploy/floor %.2fx (target <= 1.3), kubectl/kfdeploy %.2fx (target >= 4), no-op/first %.2fx (target <= 1), delete/apply %.2fx (target < 2), kfdeploy peak %.0f MiB (target < 250)",
			n, apply/floor, kubectl/apply, res["kfdeploy apply (no-op)"].seconds/apply, res["kfdeploy delete"].seconds/apply, float64(res["kfdeploy apply"].maxRSS)/1024))
	}
	fmt.Println()
	for _, s := range summary {
		fmt.Println(s)
	}
	return nil
}

// benchSize measures the three clients on n objects, each in a fresh namespace. With several
// passes the order of the clients alternates (the cluster's controllers are still busy with the
// previous client's objects for a while) and the best time of each counts.
func benchSize(ctx context.Context, o options, n int) (map[string]measurement, error) {
	res := map[string]measurement{}
	record := func(name string, m measurement) {
		if prev, ok := res[name]; !ok || m.seconds < prev.seconds {
			if prev.maxRSS > m.maxRSS {
				m.maxRSS = prev.maxRSS
			}
			res[name] = m
		} else if m.maxRSS > prev.maxRSS {
			prev.maxRSS = m.maxRSS
			res[name] = prev
		}
	}
	runners := []func(ns string) error{
		func(ns string) error {
			start := time.Now()
			if err := ssaLoop(ctx, o, generateObjects(ns, n)); err != nil {
				return fmt.Errorf("client-go loop: %w", err)
			}
			record("client-go SSA loop (floor)", measurement{seconds: time.Since(start).Seconds()})
			return nil
		},
		func(ns string) error {
			m, err := runKubectl(ctx, o, ns, n)
			record("kubectl apply --server-side", m)
			return err
		},
		func(ns string) error {
			ms, err := runKfdeploy(ctx, o, ns, n)
			for name, m := range ms {
				record(name, m)
			}
			return err
		},
	}
	cs, err := clientset(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	for pass := 0; pass < o.passes; pass++ {
		for k := range runners {
			idx := k
			if pass%2 == 1 {
				idx = len(runners) - 1 - k
			}
			ns := fmt.Sprintf("bench-%d-%d-%d-%d", n, pass, idx, time.Now().Unix()%100000)
			if err := runners[idx](ns); err != nil {
				return nil, err
			}
			// kfdeploy deletes its own namespace (timed); the others are removed untimed.
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
	}
	return res, nil
}

func runKubectl(ctx context.Context, o options, ns string, n int) (measurement, error) {
	file := filepath.Join(o.work, ns+".yaml")
	data, err := manifest.Encode(generateObjects(ns, n))
	if err != nil {
		return measurement{}, err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return measurement{}, err
	}
	m, err := timed(ctx, "", o.kubectl, "--kubeconfig", o.kubeconfig, "apply", "--server-side", "--field-manager", "bench", "-f", file)
	if err != nil {
		return measurement{}, fmt.Errorf("kubectl apply: %w", err)
	}
	return m, nil
}

// runKfdeploy applies, re-applies and deletes an app whose one component is the objects as
// plain YAML.
func runKfdeploy(ctx context.Context, o options, ns string, n int) (map[string]measurement, error) {
	appRoot := filepath.Join(o.work, ns)
	if err := os.RemoveAll(appRoot); err != nil {
		return nil, err
	}
	appDir := filepath.Join(appRoot, "app")
	compDir := filepath.Join(appDir, "components", "bench")
	if err := os.MkdirAll(compDir, 0o755); err != nil {
		return nil, err
	}
	data, err := manifest.Encode(generateObjects(ns, n))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(compDir, "objects.yaml"), data, 0o644); err != nil {
		return nil, err
	}
	app := fmt.Sprintf("apiVersion: kfdeploy.dev/v1alpha1\nkind: App\nmetadata:\n  name: app\nspec:\n  platform: none\n  namespace: %s\n  components:\n    - name: bench\n", ns)
	if err := os.WriteFile(filepath.Join(appDir, "app.yaml"), []byte(app), 0o644); err != nil {
		return nil, err
	}
	if _, err := timed(ctx, appDir, o.kfdeploy, "generate"); err != nil {
		return nil, err
	}
	conc := strconv.Itoa(o.concurrency)
	kfd := func(args ...string) (measurement, error) {
		return timed(ctx, appDir, o.kfdeploy, append([]string{"--kubeconfig", o.kubeconfig}, args...)...)
	}
	res := map[string]measurement{}
	// --wait=false: the floor and kubectl do not wait for readiness either; what waiting costs
	// depends on the cluster's controllers, not on the client.
	for _, step := range []struct {
		name string
		args []string
	}{
		{"kfdeploy apply", []string{"apply", "--skip-preflight", "--wait=false", "--concurrency", conc}},
		{"kfdeploy apply (no-op)", []string{"apply", "--skip-preflight", "--wait=false", "--concurrency", conc}},
		{"kfdeploy delete", []string{"delete", "--yes", "--purge", "--concurrency", conc}},
	} {
		m, err := kfd(step.args...)
		if err != nil {
			return res, err
		}
		res[step.name] = m
	}
	return res, nil
}

// generateObjects returns a Namespace and n-1 objects in it: ConfigMaps, Services and
// Deployments (0 replicas: the benchmark measures apply, not the scheduler) in equal parts.
func generateObjects(ns string, n int) []*unstructured.Unstructured {
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}
	for i := 0; len(objs) < n; i++ {
		name := fmt.Sprintf("obj-%05d", i)
		meta := map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"bench": "true", "app": name}}
		var o map[string]any
		switch i % 3 {
		case 0:
			o = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": map[string]any{"index": strconv.Itoa(i), "payload": strings.Repeat("x", 256)}}
		case 1:
			o = map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": map[string]any{
				"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8080)}}}}
		default:
			o = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": map[string]any{
				"replicas": int64(0), "selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": map[string]any{
					"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}}}}}}
		}
		objs = append(objs, &unstructured.Unstructured{Object: o})
	}
	manifest.Sort(objs)
	return objs
}

// ssaLoop is the floor: server-side apply of every object with the given concurrency, the
// namespace first, no inventory, no waiting. Same client limits as kfdeploy.
func ssaLoop(ctx context.Context, o options, objs []*unstructured.Unstructured) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	apply := func(u *unstructured.Unstructured) error {
		m, err := mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return err
		}
		ri := dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		_, err = ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "bench-floor", Force: true})
		return err
	}
	if err := apply(objs[0]); err != nil {
		return err
	}
	g := errgroup.Group{}
	g.SetLimit(o.concurrency)
	for _, u := range objs[1:] {
		g.Go(func() error { return apply(u) })
	}
	return g.Wait()
}

func clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// timed runs a command and returns its wall time and peak resident memory.
func timed(ctx context.Context, dir, name string, args ...string) (measurement, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Seconds()
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return measurement{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail)
	}
	m := measurement{seconds: elapsed}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss
	}
	return m, nil
}
