//go:build conformance

package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// controllerStarter starts a component's real programs through the harness, in place of the
// Deployments that `kfdeploy apply` created for the app, and returns when they serve.
type controllerStarter func(t *testing.T, e *env, app *e2eutil.FullApp)

// smokeComponents are the components `kfdeploy test` has a workload for.
var smokeComponents = []string{"tf-job-operator", "argo", "katib"}

// smokeStarters are the starters the smoke test uses, by component: each starts the
// component's real programs as its own conformance test does (a component whose binaries are
// not built skips the test).
func smokeStarters() map[string]controllerStarter {
	return map[string]controllerStarter{
		"tf-job-operator": func(t *testing.T, e *env, app *e2eutil.FullApp) {
			startTrainingOperator(context.Background(), t, e, binary(t, "training-operator"), app.Namespace)
		},
		"argo": func(t *testing.T, e *env, app *e2eutil.FullApp) {
			startArgo(context.Background(), t, e, binary(t, "workflow-controller"), binary(t, "argoexec"), app.Namespace)
		},
	}
}

// smokeReport is the -o json document of `kfdeploy test`.
type smokeReport struct {
	Passed  bool `json:"passed"`
	Results []struct {
		Workload string `json:"workload"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Cleanup  string `json:"cleanup"`
	} `json:"results"`
}

func parseSmokeReport(t *testing.T, r e2eutil.Result) smokeReport {
	t.Helper()
	var rep smokeReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("parse kfdeploy test -o json: %v\n%s", err, r.Stdout)
	}
	return rep
}

func (r smokeReport) status(workload string) (string, string) {
	for _, res := range r.Results {
		if res.Workload == workload {
			return res.Status, res.Reason
		}
	}
	return "", ""
}

// TestSmokeTestWithRealControllers: with the real programs of the components whose starters
// exist (smokeStarters), `kfdeploy test` passes, the other components reported skipped; the
// TFJob's worker script runs here (harness ScriptPods) and passes only with a GPU that a
// stand-in nvidia-smi lists, and fails saying so without one; with a GPU request larger than
// any node, its TFJob fails naming the scheduler's message while the other workloads still
// pass; nothing is left behind.
func TestSmokeTestWithRealControllers(t *testing.T) {
	starters := smokeStarters()
	var have, missing []string
	for _, c := range smokeComponents {
		if starters[c] == nil {
			missing = append(missing, c)
		} else {
			have = append(have, c)
		}
	}
	if len(have) == 0 {
		t.Skipf("waits for the harness starters of %s (real controllers in place of their Deployments): register them in smokeStarters", strings.Join(missing, ", "))
	}
	if len(missing) > 0 {
		t.Logf("not covered until their starters exist: %s", strings.Join(missing, ", "))
	}

	e := newEnv(t)
	ctx := context.Background()
	app := e.smokeApp(t, have)
	for _, c := range have {
		starters[c](t, e, app)
	}

	standIn := gpuStandIn(t)
	var workers *harness.ScriptPods
	if starters["tf-job-operator"] != nil {
		workers = runWorkers(ctx, t, e, app.Namespace, standIn)
	}
	r := e.Run(t, app.Dir, "test", "--timeout", "5m", "-o", "json")
	rep := parseSmokeReport(t, r)
	if r.Code != 0 || !rep.Passed {
		t.Fatalf("kfdeploy test with the real controllers: exit %d, %+v", r.Code, rep.Results)
	}
	if workers != nil {
		stopWorkers(t, workers)
		if _, reason := rep.status("tfjob"); !strings.Contains(reason, "GPU visible: "+gpuLine) {
			t.Errorf("tfjob passed with %q, want the worker's report of the stand-in's GPU", reason)
		}
	}
	for i, c := range smokeComponents {
		want := "skipped"
		if starters[c] != nil {
			want = "passed"
		}
		if s, reason := rep.status(smokeWorkloads[i]); s != want {
			t.Errorf("%s: %s (%s), want %s", smokeWorkloads[i], s, reason, want)
		}
	}

	if starters["tf-job-operator"] != nil {
		// One GPU more than the largest node has: the scheduler refuses the worker's pod.
		gpus := largestGPUNode(t, e) + 1
		r = e.Run(t, app.Dir, "test", "--gpus", strconv.FormatInt(gpus, 10), "--pending-timeout", "0s", "--timeout", "3m", "-o", "json")
		if r.Code != 1 {
			t.Fatalf("kfdeploy test --gpus %d: exit %d, want 1", gpus, r.Code)
		}
		rep = parseSmokeReport(t, r)
		s, reason := rep.status("tfjob")
		if s != "failed" || !strings.Contains(reason, "is Pending: 0/") || !strings.Contains(reason, "Insufficient nvidia.com/gpu") {
			t.Errorf("tfjob with %d GPUs: %s (%s), want failed with the scheduler's message", gpus, s, reason)
		}
		for i, c := range smokeComponents[1:] {
			if s, reason := rep.status(smokeWorkloads[i+1]); starters[c] != nil && s != "passed" {
				t.Errorf("%s: %s (%s), want passed beside the failing TFJob", smokeWorkloads[i+1], s, reason)
			}
		}

		// No GPU in the worker's container (no stand-in, no device file): the TFJob fails with
		// the script's own words.
		workers = runWorkers(ctx, t, e, app.Namespace)
		r = e.Run(t, app.Dir, "test", "--timeout", "3m", "-o", "json")
		stopWorkers(t, workers)
		rep = parseSmokeReport(t, r)
		s, reason = rep.status("tfjob")
		if r.Code != 1 || s != "failed" || !strings.Contains(reason, "no GPU visible in the container") {
			t.Errorf("tfjob without a GPU: exit %d, %s (%s), want failed with the worker's message", r.Code, s, reason)
		}
	}

	// Every run cleaned up after itself.
	for _, gvr := range smokeResources(have) {
		list, err := e.Dyn.Resource(gvr).Namespace(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/test=true"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if o.GetDeletionTimestamp() == nil {
				t.Errorf("left behind: %s %s", gvr.Resource, o.GetName())
			}
		}
	}
}

// gpuLine is what the stand-in nvidia-smi of gpuStandIn lists.
const gpuLine = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5fd6bd5f-0000-4000-8000-000000000000)"

// gpuStandIn is a directory with an nvidia-smi that lists one GPU, for the worker's script to
// see a GPU here (no device file).
func gpuStandIn(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte("#!/bin/sh\necho '"+gpuLine+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runWorkers runs the scripts of the pods of kfdeploy test's TFJob in ns as their kubelet
// would (harness ScriptPods), with binDirs first on their PATH.
func runWorkers(ctx context.Context, t *testing.T, e *env, ns string, binDirs ...string) *harness.ScriptPods {
	t.Helper()
	w, err := e.h.RunScriptPods(ctx, ns, "kfdeploy.dev/test-workload=tfjob,training.kubeflow.org/job-name", binDirs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// stopWorkers stops w and fails the test for what went wrong running the pods.
func stopWorkers(t *testing.T, w *harness.ScriptPods) {
	t.Helper()
	w.Stop()
	for _, err := range w.Errors() {
		t.Error(err)
	}
	if early := w.CompletedEarly(); len(early) > 0 {
		t.Errorf("kwok ended pods %v before the harness held them: their status says nothing of their script", early)
	}
}

// smokeWorkloads are the workloads of smokeComponents, in the same order.
var smokeWorkloads = []string{"tfjob", "workflow", "experiment"}

func smokeResources(components []string) []schema.GroupVersionResource {
	by := map[string]schema.GroupVersionResource{
		"tf-job-operator": {Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"},
		"argo":            {Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"},
		"katib":           {Group: "kubeflow.org", Version: "v1beta1", Resource: "experiments"},
	}
	var out []schema.GroupVersionResource
	for _, c := range components {
		out = append(out, by[c])
	}
	return out
}

// smokeApp applies core and the components: claims bind to PVs made for them, and the namespace
// carries the label with which Katib's own manifests inject the metrics collector (a Katib that
// picks trial pods by their owners ignores it). Deployments the harness replaces are scaled to 0.
func (e *env) smokeApp(t *testing.T, components []string) *e2eutil.FullApp {
	t.Helper()
	dir, ns := e.NewApp(t, "smoke", "--components", "core,"+strings.Join(components, ","))
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() { e.Run(t, dir, "delete", "--purge", "--yes") })
	e.MustRun(t, dir, "param", "set", "core", "namespaceLabels", `{"katib.kubeflow.org/metrics-collector-injection": "enabled"}`)
	for _, p := range e2eutil.FullPresetParams(ns) {
		if slices.Contains(components, p[0]) {
			e.MustRun(t, dir, "param", "set", p[0], p[1], p[2])
		}
	}
	e.MustRun(t, dir, "generate")
	objs := e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests"))
	app := &e2eutil.FullApp{Dir: dir, Namespace: ns, Objects: objs, PVs: map[string]string{}}
	for _, c := range e2eutil.AppClaims(t, objs, ns) {
		app.PVs[c.Name] = e.CreateReservedPV(t, c)
	}
	e.MustRun(t, dir, "apply")
	if err := e.h.ScaleDown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

// largestGPUNode is the most nvidia.com/gpu any node can allocate.
func largestGPUNode(t *testing.T, e *env) int64 {
	t.Helper()
	nodes, err := e.Kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(fmt.Errorf("list nodes: %w", err))
	}
	var most int64
	for _, n := range nodes.Items {
		if q, ok := n.Status.Allocatable[corev1.ResourceName("nvidia.com/gpu")]; ok && q.Value() > most {
			most = q.Value()
		}
	}
	return most
}
