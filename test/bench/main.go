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
	waitMax                       int
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
	flag.IntVar(&o.waitMax, "wait-max", 1000, "largest app size at which the default apply (preflight, wait) is measured")
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

// Scenarios, each timed for every client.
const (
	first   = "first apply"
	noop    = "re-apply, nothing changed"
	oneEdit = "re-apply, one changed"
)

var scenarios = []string{first, noop, oneEdit}

// Clients measured.
const (
	floorName   = "client-go SSA loop (floor)"
	kubectlName = "kubectl apply --server-side"
	engineName  = "kfdeploy apply --wait=false --skip-preflight"
	defaultName = "kfdeploy apply (preflight, wait)"
	deleteName  = "kfdeploy delete"
)

var clients = []string{floorName, kubectlName, engineName, defaultName}

// results holds, per client and scenario, the best time of the passes and the largest RSS.
type results map[string]map[string]measurement

func (r results) record(client, scenario string, m measurement) {
	if r[client] == nil {
		r[client] = map[string]measurement{}
	}
	prev, ok := r[client][scenario]
	if !ok || m.seconds < prev.seconds {
		prev.seconds = m.seconds
	}
	prev.maxRSS = max(prev.maxRSS, m.maxRSS)
	r[client][scenario] = prev
}

func (r results) peakMiB(client string) float64 {
	var peak int64
	for _, m := range r[client] {
		peak = max(peak, m.maxRSS)
	}
	return float64(peak) / 1024
}

func run(ctx context.Context, o options) error {
	if o.kubectl == "" || o.kubeconfig == "" {
		return errors.New("set KUBECONFIG and KFDEPLOY_KUBECTL (eval \"$(scripts/testcluster.sh env)\")")
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	floor, err := newFloor(o.kubeconfig, o.concurrency)
	if err != nil {
		return err
	}
	fmt.Printf("concurrency %d, best of %d passes; no client-side rate limit for the floor or kfdeploy\n\n", o.concurrency, o.passes)
	fmt.Printf("%-7s %-46s %12s %12s %12s %9s\n", "objects", "client", first, "no change", "one changed", "peak MiB")
	var summary []string
	for _, n := range o.sizes {
		res, err := benchSize(ctx, o, floor, n)
		if err != nil {
			return fmt.Errorf("%d objects: %w", n, err)
		}
		for _, name := range append(clients, deleteName) {
			cells := make([]string, len(scenarios))
			for i, sc := range scenarios {
				cells[i] = "-"
				if m, ok := res[name][sc]; ok {
					cells[i] = fmt.Sprintf("%.2f", m.seconds)
				}
			}
			if name == deleteName {
				cells = []string{fmt.Sprintf("%.2f", res[name][first].seconds), "-", "-"}
			}
			rss := "-"
			if p := res.peakMiB(name); p > 0 {
				rss = fmt.Sprintf("%.0f", p)
			}
			fmt.Printf("%-7d %-46s %12s %12s %12s %9s\n", n, name, cells[0], cells[1], cells[2], rss)
		}
		ratio := func(client, sc string) string {
			m, ok := res[client][sc]
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.3fx", m.seconds/res[floorName][sc].seconds)
		}
		summary = append(summary,
			fmt.Sprintf("%d objects, ratio to the floor (engine: apply --wait=false --skip-preflight; default apply; kubectl):", n),
			fmt.Sprintf("  %-26s engine %s (target <= 0.25)  default %s  kubectl %s", noop, ratio(engineName, noop), ratio(defaultName, noop), ratio(kubectlName, noop)),
			fmt.Sprintf("  %-26s engine %s (target <= 0.1 at 5000)  default %s  kubectl %s", oneEdit, ratio(engineName, oneEdit), ratio(defaultName, oneEdit), ratio(kubectlName, oneEdit)),
			fmt.Sprintf("  %-26s engine %s (target <= 1.2)   default %s  kubectl %s", first, ratio(engineName, first), ratio(defaultName, first), ratio(kubectlName, first)),
			fmt.Sprintf("  kfdeploy peak RSS %.0f MiB (target < 250 at 5000 objects)", max(res.peakMiB(engineName), res.peakMiB(defaultName))))
		if n > o.waitMax {
			summary = append(summary, fmt.Sprintf("  default apply not measured above %d objects (-wait-max): its wait measures the controller-manager, whose client is limited to 20 requests/s, not kfdeploy", o.waitMax))
		}
	}
	fmt.Println()
	for _, s := range summary {
		fmt.Println(s)
	}
	return nil
}

// benchSize measures every client on n objects, each in a fresh namespace: a first apply, a
// re-apply of the same objects, and a re-apply with one ConfigMap changed. With several passes
// the order of the clients alternates (the cluster's controllers are still busy with the
// previous client's objects for a while) and the best time of each counts.
func benchSize(ctx context.Context, o options, floor *floorClient, n int) (results, error) {
	res := results{}
	runners := []func(ns string, pass int) error{
		func(ns string, pass int) error {
			for i, sc := range scenarios {
				changed := -1
				if sc == oneEdit {
					changed = pass
				}
				start := time.Now()
				if err := floor.apply(ctx, generateObjects(ns, n, changed)); err != nil {
					return fmt.Errorf("client-go loop, %s: %w", scenarios[i], err)
				}
				res.record(floorName, sc, measurement{seconds: time.Since(start).Seconds()})
			}
			return nil
		},
		func(ns string, pass int) error {
			for _, sc := range scenarios {
				changed := -1
				if sc == oneEdit {
					changed = pass
				}
				m, err := runKubectl(ctx, o, ns, n, changed)
				if err != nil {
					return err
				}
				res.record(kubectlName, sc, m)
			}
			return nil
		},
		func(ns string, pass int) error {
			return runKfdeploy(ctx, o, ns, n, pass, engineName, []string{"--skip-preflight", "--wait=false"}, res)
		},
		func(ns string, pass int) error {
			return runKfdeploy(ctx, o, ns, n, pass, defaultName, nil, res)
		},
	}
	for pass := 0; pass < o.passes; pass++ {
		for k := range runners {
			idx := k
			if pass%2 == 1 {
				idx = len(runners) - 1 - k
			}
			if idx == len(runners)-1 && n > o.waitMax {
				continue // the default apply, see -wait-max
			}
			ns := fmt.Sprintf("bench-%d-%d-%d-%d", n, pass, idx, time.Now().Unix()%100000)
			if err := runners[idx](ns, pass); err != nil {
				return nil, err
			}
			// kfdeploy deletes its own namespace (timed); the others are removed untimed.
			_ = floor.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
	}
	return res, nil
}

func runKubectl(ctx context.Context, o options, ns string, n, changed int) (measurement, error) {
	file := filepath.Join(o.work, ns+".yaml")
	data, err := manifest.Encode(generateObjects(ns, n, changed))
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

// runKfdeploy applies an app whose one component is the objects as plain YAML: first, again,
// and with one object changed (generate is not timed), then deletes it.
func runKfdeploy(ctx context.Context, o options, ns string, n, pass int, name string, flags []string, res results) error {
	appRoot := filepath.Join(o.work, ns)
	if err := os.RemoveAll(appRoot); err != nil {
		return err
	}
	appDir := filepath.Join(appRoot, "app")
	compDir := filepath.Join(appDir, "components", "bench")
	if err := os.MkdirAll(compDir, 0o755); err != nil {
		return err
	}
	app := fmt.Sprintf("apiVersion: kfdeploy.dev/v1alpha1\nkind: App\nmetadata:\n  name: app\nspec:\n  platform: none\n  namespace: %s\n  components:\n    - name: bench\n", ns)
	if err := os.WriteFile(filepath.Join(appDir, "app.yaml"), []byte(app), 0o644); err != nil {
		return err
	}
	kfd := func(args ...string) (measurement, error) {
		return timed(ctx, appDir, o.kfdeploy, append([]string{"--kubeconfig", o.kubeconfig}, args...)...)
	}
	apply := append([]string{"apply", "--concurrency", strconv.Itoa(o.concurrency)}, flags...)
	for _, sc := range scenarios {
		changed := -1
		if sc == oneEdit {
			changed = pass
		}
		data, err := manifest.Encode(generateObjects(ns, n, changed))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(compDir, "objects.yaml"), data, 0o644); err != nil {
			return err
		}
		if _, err := kfd("generate"); err != nil {
			return err
		}
		m, err := kfd(apply...)
		if err != nil {
			return err
		}
		res.record(name, sc, m)
	}
	m, err := kfd("delete", "--yes", "--purge", "--concurrency", strconv.Itoa(o.concurrency))
	if err != nil {
		return err
	}
	if name == engineName {
		res.record(deleteName, first, m)
	}
	return nil
}

// generateObjects returns a Namespace and n-1 objects in it: ConfigMaps, Services and
// Deployments (0 replicas: the benchmark measures apply, not the scheduler) in equal parts.
// With changed >= 0, the first ConfigMap's data differs (by that number).
func generateObjects(ns string, n, changed int) []*unstructured.Unstructured {
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}}
	for i := 0; len(objs) < n; i++ {
		name := fmt.Sprintf("obj-%05d", i)
		meta := map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"bench": "true", "app": name}}
		var o map[string]any
		switch i % 3 {
		case 0:
			data := map[string]any{"index": strconv.Itoa(i), "payload": strings.Repeat("x", 256)}
			if i == 0 && changed >= 0 {
				data["changed"] = strconv.Itoa(changed)
			}
			o = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
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

// floorClient is the floor: server-side apply of every object with the given concurrency, the
// namespace first, no inventory, no waiting, no client-side rate limit (QPS -1), clients and
// discovery built once for the whole run.
type floorClient struct {
	dyn         dynamic.Interface
	cs          *kubernetes.Clientset
	mapper      *restmapper.DeferredDiscoveryRESTMapper
	concurrency int
}

func newFloor(kubeconfig string, concurrency int) (*floorClient, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	return &floorClient{dyn: dyn, cs: cs, mapper: mapper, concurrency: concurrency}, nil
}

func (f *floorClient) apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	one := func(u *unstructured.Unstructured) error {
		m, err := f.mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return err
		}
		ri := f.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		_, err = ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "bench-floor", Force: true})
		return err
	}
	if err := one(objs[0]); err != nil {
		return err
	}
	g := errgroup.Group{}
	g.SetLimit(f.concurrency)
	for _, u := range objs[1:] {
		g.Go(func() error { return one(u) })
	}
	return g.Wait()
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
