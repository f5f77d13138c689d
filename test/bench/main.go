// Command bench measures kfdeploy apply and delete against, in the same run on the same
// cluster, kubectl apply --server-side and a bare client-go server-side-apply loop with the same
// concurrency (the floor). Each run uses a fresh namespace; each time is the median of the
// passes. It ends with one table of the targets, as ratios to the floor of the same run, and
// the machine's load. Run it through `make bench`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

type options struct {
	kfdeploy, kubectl, kubeconfig string
	sizes                         []int
	concurrency                   int
	passes                        int
	waitMax                       int
	largePasses                   int
	work                          string
	// fullPreset measures the default first apply of the full preset to Ready.
	fullPreset bool
	// preflightResult is the file scripts/bench-preflight.sh wrote its result to ("" when it
	// did not run): its row joins the targets table.
	preflightResult string
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
	flag.IntVar(&o.passes, "passes", 3, "passes over the clients, in alternating order; the median time counts")
	flag.IntVar(&o.waitMax, "wait-max", 5000, "largest app size at which the default apply (preflight, wait) is measured")
	flag.IntVar(&o.largePasses, "large-passes", 1, "passes at sizes of 5,000 objects and more (each first apply to Ready takes minutes)")
	flag.BoolVar(&o.fullPreset, "full-preset", true, "measure the default first apply of the full preset to Ready")
	flag.StringVar(&o.preflightResult, "preflight-result", "", "result file of scripts/bench-preflight.sh, shown in the targets table")
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

// results holds, per client and scenario, the times of the passes and the largest RSS.
type results map[string]map[string]*samples

type samples struct {
	seconds []float64
	maxRSS  int64
}

func (r results) record(client, scenario string, m measurement) {
	if r[client] == nil {
		r[client] = map[string]*samples{}
	}
	s := r[client][scenario]
	if s == nil {
		s = &samples{}
		r[client][scenario] = s
	}
	s.seconds = append(s.seconds, m.seconds)
	s.maxRSS = max(s.maxRSS, m.maxRSS)
}

// median is the median time of a client in a scenario, false when it was not measured.
func (r results) median(client, scenario string) (float64, bool) {
	s := r[client][scenario]
	if s == nil || len(s.seconds) == 0 {
		return 0, false
	}
	v := slices.Sorted(slices.Values(s.seconds))
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

func (r results) peakMiB(client string) float64 {
	var peak int64
	for _, s := range r[client] {
		peak = max(peak, s.maxRSS)
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
	fmt.Printf("concurrency %d, median of %d passes (at most -large-passes at 5,000 objects and more); no client-side rate limit for the floor or kfdeploy; load average before: %s\n\n", o.concurrency, o.passes, loadAverage())
	fmt.Printf("%-7s %-46s %12s %12s %12s %9s\n", "objects", "client", first, "no change", "one changed", "peak MiB")
	var targets []string
	for _, n := range o.sizes {
		res, err := benchSize(ctx, o, floor, n)
		if err != nil {
			return fmt.Errorf("%d objects: %w", n, err)
		}
		for _, name := range append(clients, deleteName) {
			cells := make([]string, len(scenarios))
			for i, sc := range scenarios {
				cells[i] = "-"
				if v, ok := res.median(name, sc); ok {
					cells[i] = fmt.Sprintf("%.2f", v)
				}
			}
			if name == deleteName {
				cells[1], cells[2] = "-", "-"
			}
			rss := "-"
			if p := res.peakMiB(name); p > 0 {
				rss = fmt.Sprintf("%.0f", p)
			}
			fmt.Printf("%-7d %-46s %12s %12s %12s %9s\n", n, name, cells[0], cells[1], cells[2], rss)
		}
		targets = append(targets, targetRows(res, n)...)
	}
	if o.fullPreset {
		row, err := benchFullPreset(ctx, o)
		if err != nil {
			return fmt.Errorf("full preset: %w", err)
		}
		targets = append(targets, row)
	}
	if o.preflightResult != "" {
		row, err := preflightRow(o.preflightResult)
		if err != nil {
			return err
		}
		targets = append(targets, row)
	}
	fmt.Printf("\nload average after: %s\n\n", loadAverage())
	fmt.Printf("%-58s %9s %9s %8s %8s  %s\n", "target (ratio to the floor of the same run)", "seconds", "floor", "ratio", "kubectl", "met")
	for _, row := range targets {
		fmt.Println(row)
	}
	return nil
}

// benchFullPreset times the default first apply (preflight with --nfs-server creating the
// claims' volumes, apply, wait) of the full preset on the cluster's own topology, as the
// README's quick start runs it, and then deletes the app (untimed). Nothing runs Katib's or the
// training operator's webhooks on simulated nodes, so their failure policy is Ignore.
func benchFullPreset(ctx context.Context, o options) (string, error) {
	ns := fmt.Sprintf("bench-full-%d", time.Now().Unix()%100000)
	root := filepath.Join(o.work, ns)
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if _, err := timed(ctx, root, o.kfdeploy, "init", "app", "--platform", "none", "--preset", "full", "--namespace", ns); err != nil {
		return "", err
	}
	appDir := filepath.Join(root, "app")
	kfd := func(args ...string) (measurement, error) {
		return timed(ctx, appDir, o.kfdeploy, append([]string{"--kubeconfig", o.kubeconfig}, args...)...)
	}
	params := append(e2eutil.FullPresetParams(ns),
		[3]string{"tf-job-operator", "webhookFailurePolicy", "Ignore"},
		[3]string{"katib", "webhookFailurePolicy", "Ignore"})
	for _, p := range params {
		if _, err := kfd("param", "set", p[0], p[1], p[2]); err != nil {
			return "", err
		}
	}
	if _, err := kfd("generate"); err != nil {
		return "", err
	}
	objects, err := countObjects(filepath.Join(appDir, "manifests"))
	if err != nil {
		return "", err
	}
	m, err := kfd("apply", "--nfs-server", "127.0.0.1", "--nfs-path", "/nfs-data", "--timeout", "30m")
	if err != nil {
		return "", err
	}
	if _, err := kfd("delete", "--yes", "--purge"); err != nil {
		return "", err
	}
	return fmt.Sprintf("%-58s %9.2f %9s %8s %8s  %s", fmt.Sprintf("default first apply of the full preset (%d objects), to Ready", objects), m.seconds, "-", "-", "-",
		fmt.Sprintf("reported (peak %.0f MiB)", float64(m.maxRSS)/1024)), nil
}

// countObjects is the number of objects in the YAML files of a manifests directory.
func countObjects(dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		objs, err := manifest.Decode(f, data)
		if err != nil {
			return 0, err
		}
		n += len(objs)
	}
	return n, nil
}

// preflightRow is the targets row of scripts/bench-preflight.sh's result: one line of
// "median_seconds peak_rss_mb nodes pods".
func preflightRow(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("preflight result: %w", err)
	}
	var median, peakMB float64
	var nodes, pods int
	if _, err := fmt.Sscan(string(data), &median, &peakMB, &nodes, &pods); err != nil {
		return "", fmt.Errorf("preflight result %s: want \"median_seconds peak_rss_mb nodes pods\": %w", file, err)
	}
	return fmt.Sprintf("%-58s %9.2f %9s %8s %8s  %v (< 1 s and < 300 MB; peak %.0f MB)", fmt.Sprintf("preflight alone, %d nodes / %d pods (median)", nodes, pods), median, "-", "-", "-",
		median < 1 && peakMB < 300, peakMB), nil
}

// targetRows are the rows of the targets table for one size: kfdeploy's median, the floor's,
// their ratio, kubectl's ratio, and whether the target is met.
func targetRows(res results, n int) []string {
	row := func(what, client, sc string, target float64) string {
		v, ok := res.median(client, sc)
		fl, _ := res.median(floorName, sc)
		if !ok || fl == 0 {
			return fmt.Sprintf("%-58s %9s", fmt.Sprintf("%s, %d objects", what, n), "not run")
		}
		kubectl := "-"
		if k, ok := res.median(kubectlName, sc); ok {
			kubectl = fmt.Sprintf("%.2fx", k/fl)
		}
		met := "-"
		if target > 0 {
			met = fmt.Sprintf("%v (<= %.2fx)", v/fl <= target, target)
		}
		return fmt.Sprintf("%-58s %9.2f %9.2f %7.3fx %8s  %s", fmt.Sprintf("%s, %d objects", what, n), v, fl, v/fl, kubectl, met)
	}
	rows := []string{
		row("default apply, nothing changed", defaultName, noop, 0.25),
		row("engine (--skip-preflight --wait=false), nothing changed", engineName, noop, targetAt(n, 5000, 0.1)),
		row("default apply, one changed", defaultName, oneEdit, targetAt(n, 5000, 0.1)),
		row("engine, one changed", engineName, oneEdit, targetAt(n, 5000, 0.1)),
		row("default apply, first apply (to Ready)", defaultName, first, 0),
		row("engine, first apply", engineName, first, 0),
	}
	return rows
}

// targetAt is the target where it applies (at size at), none elsewhere.
func targetAt(n, at int, target float64) float64 {
	if n == at {
		return target
	}
	return 0
}

// loadAverage is the machine's 1, 5 and 15 minute load average, which other work on it
// raises (the cluster shares the cores).
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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
	passes := o.passes
	if n >= 5000 {
		passes = min(passes, o.largePasses)
	}
	for pass := 0; pass < passes; pass++ {
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
	// The first apply of 5,000 objects waits minutes for the controller-manager to roll out
	// the Deployments: longer than apply's default deadline.
	apply := append([]string{"apply", "--concurrency", strconv.Itoa(o.concurrency), "--timeout", "30m"}, flags...)
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
	m, err := kfd("delete", "--yes", "--purge", "--concurrency", strconv.Itoa(o.concurrency), "--timeout", "30m")
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
