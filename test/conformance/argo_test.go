//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

var (
	workflowsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	cwftGVR      = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "clusterworkflowtemplates"}
)

// TestArgoWorkflows runs the argo component with the real workflow-controller (v3.7.18) and
// real argoexec in every workflow pod (harness.ArgoPods): a DAG passing an output parameter
// from one task to the next, and a workflow running a ClusterWorkflowTemplate. The harness
// fails the test on any "forbidden" in the controller's or argoexec's logs.
func TestArgoWorkflows(t *testing.T) {
	controller := binary(t, "workflow-controller")
	argoexec := binary(t, "argoexec")
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir, ns := e.NewApp(t, "argo", "--components", "argo")
	e.CleanupNamespace(t, ns)
	// The app's ClusterRole and bindings are cluster-scoped: delete removes them with the rest.
	t.Cleanup(func() { e.Run(t, dir, "delete", "--yes", "--purge") })
	// The argo component does not create the namespace (the core component would).
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.MustRun(t, dir, "generate")
	e.MustRun(t, dir, "apply")

	pods, proc := startArgo(ctx, t, e, controller, argoexec, ns)

	t.Run("dag output parameter", func(t *testing.T) {
		wf := sample(t, "workflow-dag-outputs-valid.yaml", "Workflow")
		wf.SetNamespace(ns)
		done := runWorkflow(ctx, t, e, wf)
		produced := nodeParam(t, done, "produce", "outputs", "value")
		consumed := nodeParam(t, done, "consume", "inputs", "value")
		got := nodeParam(t, done, "consume", "outputs", "got")
		if produced != "42" {
			t.Errorf("task produce's output parameter value = %q, want 42 (what its command wrote)", produced)
		}
		if consumed != produced {
			t.Errorf("task consume's input value = %q, want task produce's output %q", consumed, produced)
		}
		if got != "got-"+produced {
			t.Errorf("task consume wrote %q, want %q: its command did not see the input", got, "got-"+produced)
		}
	})

	// The main command's real exit code reaches the workflow: the emissary writes it, the pod
	// runner puts it on the pod, kwok's stage fails the pod with it.
	t.Run("exit code", func(t *testing.T) {
		wf := sample(t, "workflow-dag-outputs-valid.yaml", "Workflow")
		wf.SetNamespace(ns)
		wf.SetName("workflow-exit-code")
		templates := []any{map[string]any{
			"name":      "main",
			"container": map[string]any{"image": "docker.io/library/busybox:1.36.1", "command": []any{"sh", "-c", "exit 3"}},
		}}
		if err := unstructured.SetNestedSlice(wf.Object, templates, "spec", "templates"); err != nil {
			t.Fatal(err)
		}
		done := waitWorkflow(ctx, t, e, wf)
		if early := pods.CompletedEarly(); len(early) > 0 {
			t.Fatalf("kwok completed pods %v before their command's exit code was known: they should be held (holdWorkflowPods)", early)
		}
		if phase, _, _ := unstructured.NestedString(done.Object, "status", "phase"); phase != "Failed" {
			t.Fatalf("workflow %s ended %s, want Failed: its command exits 3", done.GetName(), phase)
		}
		nodes, _, _ := unstructured.NestedMap(done.Object, "status", "nodes")
		for _, n := range nodes {
			code, found, _ := unstructured.NestedString(n.(map[string]any), "outputs", "exitCode")
			if found && code != "3" {
				t.Errorf("node %v: exit code %s, want 3", n.(map[string]any)["displayName"], code)
			}
			if found {
				return
			}
		}
		t.Errorf("no node of workflow %s has an exit code: %v", done.GetName(), nodes)
	})

	t.Run("cluster workflow template", func(t *testing.T) {
		if strings.Contains(proc.Log(), "doesn't have RBAC access for ClusterWorkflowTemplates") {
			t.Fatal("the controller started without access to ClusterWorkflowTemplates (its log says so)")
		}
		cwft := sample(t, "workflow-clustertemplate.yaml", "ClusterWorkflowTemplate")
		name := e2eutil.UniqueName("conformance-cwft")
		cwft.SetName(name)
		if _, err := e.Dyn.Resource(cwftGVR).Create(ctx, cwft, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Dyn.Resource(cwftGVR).Delete(context.Background(), name, metav1.DeleteOptions{}) })
		wf := sample(t, "workflow-clustertemplate.yaml", "Workflow")
		wf.SetNamespace(ns)
		steps, _, _ := unstructured.NestedSlice(wf.Object, "spec", "templates")
		if err := setTemplateRefName(steps, name); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(wf.Object, steps, "spec", "templates"); err != nil {
			t.Fatal(err)
		}
		done := runWorkflow(ctx, t, e, wf)
		if said := nodeParam(t, done, "say", "outputs", "said"); said != "hello-cluster" {
			t.Errorf("the ClusterWorkflowTemplate's step output = %q, want hello-cluster", said)
		}
	})
}

// startArgo runs the real workflow-controller in place of the app's Deployment in ns, and the
// real argoexec in each workflow pod it creates (harness.RunArgoPods); both stop when the test
// ends, before the cleanups registered earlier (the app's delete) run.
func startArgo(ctx context.Context, t *testing.T, e *env, controller, argoexec, ns string) (*harness.ArgoPods, *harness.Process) {
	t.Helper()
	// Two controllers on one machine would both bind the metrics port (9090, all interfaces;
	// util/telemetry/exporter_prometheus.go@v3.7.18 panics when it is taken): move it to a
	// free one in the live config map, the only change to what kfdeploy applied.
	setMetricsPort(ctx, t, e, ns, int(freePort(t)))
	holdWorkflowPods(ctx, t, e, ns)

	pods, err := e.h.RunArgoPods(ctx, ns, argoexec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pods.Stop()
		for _, err := range pods.Errors() {
			t.Errorf("running workflow pods: %v", err)
		}
	})
	proc, err := e.h.Start(ctx, harness.Program{Binary: controller, Namespace: ns, Deployment: "workflow-controller"})
	if err != nil {
		t.Fatal(err)
	}
	// Stopped before the app is deleted: without its RBAC it would log refusals.
	t.Cleanup(func() {
		proc.Stop(5 * time.Second)
		if !t.Failed() {
			return
		}
		for _, l := range proc.Lines() {
			if strings.Contains(l, "level=warning") || strings.Contains(l, "level=error") || strings.Contains(l, "level=fatal") {
				t.Logf("workflow-controller: %s", l)
			}
		}
	})
	if _, err := proc.WaitLog(ctx, regexp.MustCompile(`started leading|Started Workflow|Starting Workflow Controller`)); err != nil {
		t.Fatalf("workflow-controller did not start: %v\n%s", err, proc.Log())
	}

	return pods, proc
}

// runWorkflow creates wf and waits until it is Succeeded; it fails on any other end.
func runWorkflow(ctx context.Context, t *testing.T, e *env, wf *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	last := waitWorkflow(ctx, t, e, wf)
	phase, _, _ := unstructured.NestedString(last.Object, "status", "phase")
	if phase != "Succeeded" {
		msg, _, _ := unstructured.NestedString(last.Object, "status", "message")
		t.Fatalf("workflow %s ended %s: %s\nnodes: %v", last.GetName(), phase, msg, last.Object["status"])
	}
	return last
}

// waitWorkflow creates wf and returns it once it has finished (Succeeded, Failed or Error).
func waitWorkflow(ctx context.Context, t *testing.T, e *env, wf *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	created, err := e.Dyn.Resource(workflowsGVR).Namespace(wf.GetNamespace()).Create(ctx, wf, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create workflow %s: %v", wf.GetName(), err)
	}
	var last *unstructured.Unstructured
	e2eutil.Eventually(t, 3*time.Minute, "workflow "+created.GetName()+" finishes", func(ctx context.Context) (bool, error) {
		got, err := e.Dyn.Resource(workflowsGVR).Namespace(created.GetNamespace()).Get(ctx, created.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got
		phase, _, _ := unstructured.NestedString(got.Object, "status", "phase")
		return phase == "Succeeded" || phase == "Failed" || phase == "Error", nil
	})
	return last
}

// nodeParam returns the value of parameter name in the inputs or outputs of the workflow's
// node whose display name is node.
func nodeParam(t *testing.T, wf *unstructured.Unstructured, node, section, name string) string {
	t.Helper()
	nodes, _, _ := unstructured.NestedMap(wf.Object, "status", "nodes")
	for _, n := range nodes {
		m, _ := n.(map[string]any)
		if m["displayName"] != node {
			continue
		}
		params, _, _ := unstructured.NestedSlice(m, section, "parameters")
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if pm["name"] == name {
				v, _ := pm["value"].(string)
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("node %s has no %s parameter %s: %v", node, section, name, m[section])
	}
	t.Fatalf("workflow %s has no node %s", wf.GetName(), node)
	return ""
}

// sample is the object of kind in a sample file.
func sample(t *testing.T, file, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range readSamples(t, file) {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("%s has no %s", file, kind)
	return nil
}

// setTemplateRefName points every templateRef of the steps templates at name.
func setTemplateRefName(templates []any, name string) error {
	n := 0
	for _, tpl := range templates {
		steps, _, _ := unstructured.NestedSlice(tpl.(map[string]any), "steps")
		for _, group := range steps {
			for _, step := range group.([]any) {
				if ref, ok := step.(map[string]any)["templateRef"].(map[string]any); ok {
					ref["name"] = name
					n++
				}
			}
		}
		tpl.(map[string]any)["steps"] = steps
	}
	if n == 0 {
		return fmt.Errorf("no templateRef in the sample workflow")
	}
	return nil
}

// holdWorkflowPods makes every workflow pod wait for the exit code of its main command before
// kwok completes it (scripts/lib/stages.yaml, harness.kfdeploy.dev/hold): the annotation goes
// into the controller's workflowDefaults in the live config map, beside what kfdeploy rendered.
func holdWorkflowPods(ctx context.Context, t *testing.T, e *env, ns string) {
	t.Helper()
	cm, err := e.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "workflow-controller-configmap", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]any{}
	if err := yaml.Unmarshal([]byte(cm.Data["workflowDefaults"]), &defaults); err != nil {
		t.Fatalf("workflowDefaults of workflow-controller-configmap: %v", err)
	}
	if err := unstructured.SetNestedField(defaults, "true", "spec", "podMetadata", "annotations", "harness.kfdeploy.dev/hold"); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(defaults)
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["workflowDefaults"] = string(out)
	if _, err := e.Kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setMetricsPort(ctx context.Context, t *testing.T, e *env, ns string, port int) {
	t.Helper()
	patch := fmt.Sprintf(`{"data":{"metricsConfig":"port: %d\n"}}`, port)
	if _, err := e.Kube.CoreV1().ConfigMaps(ns).Patch(ctx, "workflow-controller-configmap", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}
