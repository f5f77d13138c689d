//go:build conformance

package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// controllerStarter starts a component's real programs through the harness, in place of the
// Deployments that `kfdeploy apply` created for the app, and returns when they serve.
type controllerStarter func(t *testing.T, e *env, app *e2eutil.FullApp)

// smokeComponents are the components `kfdeploy test` has a workload for.
var smokeComponents = []string{"tf-job-operator", "argo", "katib"}

// smokeStarters are the starters the smoke test uses, by component. Each component's conformance
// test provides its own; register it here when it exists:
//   - tf-job-operator: the training-operator binary (with its webhook server);
//   - argo: workflow-controller, and argoexec running the workflow pods' init, main and wait
//     steps (the output parameter travels through the wait step);
//   - katib: katib-controller (with its webhooks), katib-db-manager on a MySQL-compatible
//     server, katib-suggestion-goptuna for random search, and katib-report-metrics reporting
//     each trial's observation log as the StdOut collector would.
func smokeStarters() map[string]controllerStarter {
	return map[string]controllerStarter{}
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

// TestSmokeTestWithRealControllers: with the real training operator, Argo and Katib, `kfdeploy
// test` passes; with a GPU request larger than any node, its TFJob fails naming the scheduler's
// message and the other workloads still pass; nothing is left behind.
func TestSmokeTestWithRealControllers(t *testing.T) {
	starters := smokeStarters()
	var missing []string
	for _, c := range smokeComponents {
		if starters[c] == nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		t.Skipf("waits for the harness starters of %s (real controllers in place of their Deployments): register them in smokeStarters", strings.Join(missing, ", "))
	}

	e := newEnv(t)
	ctx := context.Background()
	app := e.NewFullApp(t, "smoke")
	// Katib's own manifests inject the metrics collector only in namespaces with this label; a
	// Katib that picks trial pods by their owners ignores it.
	e.MustRun(t, app.Dir, "param", "set", "core", "namespaceLabels", `{"katib.kubeflow.org/metrics-collector-injection": "enabled"}`)
	e.MustRun(t, app.Dir, "generate")
	e.MustRun(t, app.Dir, "apply")
	if err := e.h.ScaleDown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range smokeComponents {
		starters[c](t, e, app)
	}

	r := e.Run(t, app.Dir, "test", "--timeout", "5m", "-o", "json")
	rep := parseSmokeReport(t, r)
	if r.Code != 0 || !rep.Passed {
		t.Fatalf("kfdeploy test with the real controllers: exit %d, %+v", r.Code, rep.Results)
	}
	for _, w := range []string{"tfjob", "workflow", "experiment"} {
		if s, reason := rep.status(w); s != "passed" {
			t.Errorf("%s: %s (%s), want passed", w, s, reason)
		}
	}

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
	for _, w := range []string{"workflow", "experiment"} {
		if s, reason := rep.status(w); s != "passed" {
			t.Errorf("%s: %s (%s), want passed beside the failing TFJob", w, s, reason)
		}
	}

	// Every run cleaned up after itself.
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"},
		{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"},
		{Group: "kubeflow.org", Version: "v1beta1", Resource: "experiments"},
	} {
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
