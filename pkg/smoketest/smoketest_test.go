package smoketest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNS = "kf"

var allComponents = []string{"core", "tf-job-operator", "argo", "katib"}

// fakeCluster is an API server of client-go fakes with a stand-in for the three controllers:
// each object a run creates is answered by the behaviour the test gives for its kind.
type fakeCluster struct {
	clients Clients
	dyn     *dynamicfake.FakeDynamicClient
	typed   *fake.Clientset

	mu   sync.Mutex
	seen map[string]*unstructured.Unstructured // by kind, as the controller first saw it
}

// behaviour acts as a controller on a newly created object: it may create pods and returns the
// status to set (nil: leave the object alone).
type behaviour func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any

func newFakeCluster(t *testing.T, nsLabels map[string]string, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		TFJobs: "TFJobList", Workflows: "WorkflowList", Experiments: "ExperimentList",
	}, objs...)
	typed := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Labels: nsLabels}})
	return &fakeCluster{clients: Clients{Dynamic: dyn, Typed: typed}, dyn: dyn, typed: typed, seen: map[string]*unstructured.Unstructured{}}
}

var katibLabels = map[string]string{katibInjectionLabel: "enabled"}

// control runs the stand-in controllers until the test ends.
func (f *fakeCluster) control(t *testing.T, by map[string]behaviour) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		handled := map[string]bool{}
		for ctx.Err() == nil {
			for _, gvr := range []schema.GroupVersionResource{TFJobs, Workflows, Experiments} {
				list, err := f.dyn.Resource(gvr).Namespace(testNS).List(ctx, metav1.ListOptions{})
				if err != nil {
					continue
				}
				for i := range list.Items {
					obj := &list.Items[i]
					if handled[obj.GetName()] {
						continue
					}
					handled[obj.GetName()] = true
					f.mu.Lock()
					f.seen[obj.GetKind()] = obj.DeepCopy()
					f.mu.Unlock()
					b := by[obj.GetKind()]
					if b == nil {
						continue
					}
					if status := b(t, f, obj); status != nil {
						obj.Object["status"] = status
						// The run may have finished and deleted it already, as with a real controller.
						if _, err := f.dyn.Resource(gvr).Namespace(testNS).Update(ctx, obj, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
							t.Errorf("fake controller: update %s: %v", obj.GetName(), err)
						}
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

func (f *fakeCluster) saw(kind string) *unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[kind]
}

// createPod creates a pod from the object's pod template labels, as a controller would.
func (f *fakeCluster) createPod(t *testing.T, name string, templateLabels map[string]any, status corev1.PodStatus) {
	l := map[string]string{}
	for k, v := range templateLabels {
		l[k], _ = v.(string)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, Labels: l}, Status: status}
	if _, err := f.typed.CoreV1().Pods(testNS).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("fake controller: create pod %s: %v", name, err)
	}
}

func terminated(container string, code int32, msg string) corev1.PodStatus {
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	return corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: container, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg}},
	}}}
}

func condition1(typ, reason, msg string) []any {
	return []any{map[string]any{"type": typ, "status": "True", "reason": reason, "message": msg}}
}

func tfJobPodLabels(obj *unstructured.Unstructured) map[string]any {
	l, _, _ := unstructured.NestedMap(obj.Object, "spec", "tfReplicaSpecs", "Worker", "template", "metadata", "labels")
	return l
}

// The behaviours of working controllers.
var (
	tfJobSucceeds behaviour = func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
		f.createPod(t, obj.GetName()+"-worker-0", tfJobPodLabels(obj), terminated("tensorflow", 0, "GPU visible: /dev/nvidia0"))
		return map[string]any{"conditions": condition1("Succeeded", "TFJobSucceeded", "TFJob kf/x successfully completed.")}
	}
	workflowSucceeds behaviour = func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
		return map[string]any{"phase": "Succeeded", "nodes": map[string]any{
			obj.GetName() + "-1": map[string]any{"displayName": "write", "type": "Pod", "phase": "Succeeded",
				"outputs": map[string]any{"parameters": []any{map[string]any{"name": "token", "value": "kfdeploy-run01"}}}},
		}}
	}
	experimentSucceeds behaviour = func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
		return map[string]any{
			"conditions":      condition1("Succeeded", "ExperimentMaxTrialsReached", "Experiment has succeeded because max trial count has reached"),
			"trialsSucceeded": int64(3),
			"currentOptimalTrial": map[string]any{"observation": map[string]any{"metrics": []any{
				map[string]any{"name": "accuracy", "latest": "0.87", "max": "0.87", "min": "0.87"},
			}}},
		}
	}
)

func options(components ...string) Options {
	return Options{
		App: "myapp", Namespace: testNS, Components: components, GPUResource: "nvidia.com/gpu", GPUs: 1,
		Timeout: 20 * time.Second, PendingTimeout: time.Minute, PollInterval: 2 * time.Millisecond, RunID: "run01",
	}
}

func result(t *testing.T, rep *Report, workload string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Workload == workload {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", workload, rep.Results)
	return Result{}
}

// gone fails the test when the run left its object in the cluster.
func (f *fakeCluster) gone(t *testing.T, gvr schema.GroupVersionResource, name string) {
	t.Helper()
	_, err := f.dyn.Resource(gvr).Namespace(testNS).Get(context.Background(), name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("%s %s still exists after the run (err %v)", gvr.Resource, name, err)
	}
}

func TestRunPasses(t *testing.T) {
	f := newFakeCluster(t, katibLabels)
	f.control(t, map[string]behaviour{"TFJob": tfJobSucceeds, "Workflow": workflowSucceeds, "Experiment": experimentSucceeds})
	rep, err := Run(context.Background(), f.clients, options(allComponents...))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.Summary != (Summary{Passed: 3}) {
		t.Fatalf("want 3 passed, got %+v", rep)
	}
	for workload, want := range map[string]string{
		"tfjob":      "GPU visible: /dev/nvidia0",
		"workflow":   "token=kfdeploy-run01 reached step check",
		"experiment": "3 trials succeeded; best accuracy=0.87",
	} {
		r := result(t, rep, workload)
		if !strings.Contains(r.Reason, want) || r.Cleanup != "deleted" {
			t.Errorf("%s: reason %q (want %q), cleanup %q", workload, r.Reason, want, r.Cleanup)
		}
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
	f.gone(t, Workflows, "kfdeploy-test-workflow-run01")
	f.gone(t, Experiments, "kfdeploy-test-experiment-run01")

	// What the controllers were given.
	tj := f.saw("TFJob")
	c, _, _ := unstructured.NestedSlice(tj.Object, "spec", "tfReplicaSpecs", "Worker", "template", "spec", "containers")
	limit, _, _ := unstructured.NestedString(c[0].(map[string]any), "resources", "limits", "nvidia.com/gpu")
	if name := c[0].(map[string]any)["name"]; name != "tensorflow" || limit != "1" {
		t.Errorf("TFJob worker: container %v with GPU limit %q, want tensorflow with 1", name, limit)
	}
	if img := c[0].(map[string]any)["image"]; img != DefaultImage {
		t.Errorf("TFJob image %v, want %s", img, DefaultImage)
	}
	wf := f.saw("Workflow")
	templates, _, _ := unstructured.NestedSlice(wf.Object, "spec", "templates")
	steps := templates[0].(map[string]any)["steps"].([]any)
	arg := steps[1].([]any)[0].(map[string]any)["arguments"].(map[string]any)["parameters"].([]any)[0].(map[string]any)["value"]
	if arg != "{{steps.write.outputs.parameters.token}}" {
		t.Errorf("step check gets %v, want step write's output parameter", arg)
	}
	exp := f.saw("Experiment")
	if n, _, _ := unstructured.NestedInt64(exp.Object, "spec", "maxTrialCount"); n != 3 {
		t.Errorf("experiment maxTrialCount %d, want 3", n)
	}
	for _, o := range []*unstructured.Unstructured{tj, wf, exp} {
		if l := o.GetLabels(); l[LabelRun] != "run01" || l[LabelApp] != "myapp" || l[LabelTest] != "true" {
			t.Errorf("%s labels %v lack the run's", o.GetKind(), l)
		}
	}
}

func TestRunFailsWithSchedulerMessage(t *testing.T) {
	const msg = "0/7 nodes are available: 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 4 Insufficient nvidia.com/gpu."
	f := newFakeCluster(t, katibLabels)
	f.control(t, map[string]behaviour{"TFJob": func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
		f.createPod(t, obj.GetName()+"-worker-0", tfJobPodLabels(obj), corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg,
		}}})
		return map[string]any{"conditions": condition1("Created", "TFJobCreated", "TFJob kf/x is created.")}
	}})
	opts := options("tf-job-operator")
	opts.GPUs = 2
	opts.PendingTimeout = 0
	rep, err := Run(context.Background(), f.clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := result(t, rep, "tfjob")
	if rep.Passed || r.Status != Failed || !strings.Contains(r.Reason, msg) || !strings.Contains(r.Reason, "kfdeploy-test-tfjob-run01-worker-0 is Pending") {
		t.Fatalf("want a failure naming the pod and the scheduler's message, got passed=%v %+v", rep.Passed, r)
	}
	if r.Cleanup != "deleted" {
		t.Errorf("cleanup %q, want deleted", r.Cleanup)
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
}

func TestRunFailsWithControllerCondition(t *testing.T) {
	f := newFakeCluster(t, katibLabels)
	f.control(t, map[string]behaviour{
		"TFJob": func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
			f.createPod(t, obj.GetName()+"-worker-0", tfJobPodLabels(obj), terminated("tensorflow", 1, "no GPU visible in the container: no device file /dev/nvidia[0-9]* and no nvidia-smi"))
			return map[string]any{"conditions": condition1("Failed", "TFJobFailed", "TFJob kf/x has failed because 1 Worker replica(s) failed.")}
		},
		"Workflow": func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
			return map[string]any{"phase": "Failed", "message": "child 'x-2' failed", "nodes": map[string]any{
				"x-2": map[string]any{"displayName": "check", "type": "Pod", "phase": "Failed", "message": "Error (exit code 1): expected kfdeploy-run01 from step write, got ''"},
			}}
		},
		"Experiment": func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
			return map[string]any{"conditions": condition1("Failed", "ExperimentMaxFailedTrialsReached", "Experiment has failed because max failed count has reached"), "trialsFailed": int64(1)}
		},
	})
	rep, err := Run(context.Background(), f.clients, options(allComponents...))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed || rep.Summary != (Summary{Failed: 3}) {
		t.Fatalf("want 3 failed, got %+v", rep)
	}
	for workload, wants := range map[string][]string{
		"tfjob":      {"has failed because 1 Worker replica(s) failed", "container tensorflow exited 1: no GPU visible"},
		"workflow":   {"child 'x-2' failed", "step check: Error (exit code 1): expected kfdeploy-run01"},
		"experiment": {"max failed count has reached", "trials: Failed 1"},
	} {
		r := result(t, rep, workload)
		for _, w := range wants {
			if !strings.Contains(r.Reason, w) {
				t.Errorf("%s: reason %q lacks %q", workload, r.Reason, w)
			}
		}
		if r.Cleanup != "deleted" {
			t.Errorf("%s: cleanup %q after a failure, want deleted", workload, r.Cleanup)
		}
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
	f.gone(t, Workflows, "kfdeploy-test-workflow-run01")
	f.gone(t, Experiments, "kfdeploy-test-experiment-run01")
}

func TestRunSkipsMissingComponents(t *testing.T) {
	f := newFakeCluster(t, nil)
	rep, err := Run(context.Background(), f.clients, options("core", "jupyterhub"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed || !rep.NothingToTest || rep.Summary != (Summary{Skipped: 3}) {
		t.Fatalf("want 3 skipped, nothing to test and not passed, got %+v", rep)
	}
	opts := options("core", "jupyterhub")
	opts.AllowNothing = true
	if rep, err := Run(context.Background(), f.clients, opts); err != nil || !rep.Passed || !rep.NothingToTest {
		t.Fatalf("AllowNothing: want passed with nothing to test, got %+v, %v", rep, err)
	}
	if r := result(t, rep, "workflow"); r.Reason != "the app has no argo component" || r.Object != "" {
		t.Errorf("workflow: %+v", r)
	}
	for _, a := range f.dyn.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("a run with nothing to test did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestRunCleansUpOnCancel(t *testing.T) {
	f := newFakeCluster(t, katibLabels)
	f.control(t, nil) // no controller answers
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for {
			if _, err := f.dyn.Resource(TFJobs).Namespace(testNS).Get(context.Background(), "kfdeploy-test-tfjob-run01", metav1.GetOptions{}); err == nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	rep, err := Run(ctx, f.clients, options("tf-job-operator"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the cancellation as the error, got %v", err)
	}
	r := result(t, rep, "tfjob")
	if r.Status != Failed || !strings.Contains(r.Reason, "interrupted") || r.Cleanup != "deleted" {
		t.Errorf("want an interrupted failure, cleaned up; got %+v", r)
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
}

func TestRunTimesOutNamingWhatItWaitedFor(t *testing.T) {
	f := newFakeCluster(t, katibLabels)
	opts := options("tf-job-operator")
	opts.Timeout = 100 * time.Millisecond
	rep, err := Run(context.Background(), f.clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := result(t, rep, "tfjob")
	for _, w := range []string{"timed out after 100ms waiting for TFJob kf/kfdeploy-test-tfjob-run01 to finish", "no status from the controller yet", "no pods were created: is the tf-job-operator controller running?"} {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("reason %q lacks %q", r.Reason, w)
		}
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
}

func TestRunKeepsAndNextRunRemovesLeftovers(t *testing.T) {
	f := newFakeCluster(t, katibLabels)
	f.control(t, map[string]behaviour{"TFJob": tfJobSucceeds})
	opts := options("tf-job-operator")
	opts.Keep = true
	rep, err := Run(context.Background(), f.clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, rep, "tfjob"); r.Status != Passed || r.Cleanup != "kept" {
		t.Fatalf("want passed and kept, got %+v", r)
	}
	if _, err := f.dyn.Resource(TFJobs).Namespace(testNS).Get(context.Background(), "kfdeploy-test-tfjob-run01", metav1.GetOptions{}); err != nil {
		t.Fatalf("kept TFJob: %v", err)
	}

	opts.Keep, opts.RunID = false, "run02"
	rep, err = Run(context.Background(), f.clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Leftovers) != 1 || rep.Leftovers[0] != "TFJob kf/kfdeploy-test-tfjob-run01" {
		t.Errorf("leftovers %v, want the kept TFJob", rep.Leftovers)
	}
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run01")
	f.gone(t, TFJobs, "kfdeploy-test-tfjob-run02")
}

func TestRunLeavesOtherAppsAlone(t *testing.T) {
	other := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": map[string]any{
		"name": "kfdeploy-test-tfjob-zzzzz", "namespace": testNS,
		"labels": map[string]any{LabelTest: "true", LabelApp: "otherapp", LabelRun: "zzzzz"},
	}}}
	f := newFakeCluster(t, katibLabels, other)
	f.control(t, map[string]behaviour{"TFJob": tfJobSucceeds})
	rep, err := Run(context.Background(), f.clients, options("tf-job-operator"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Leftovers) != 0 {
		t.Errorf("removed another app's workloads: %v", rep.Leftovers)
	}
	if _, err := f.dyn.Resource(TFJobs).Namespace(testNS).Get(context.Background(), other.GetName(), metav1.GetOptions{}); err != nil {
		t.Errorf("another app's TFJob: %v", err)
	}
}

// katibWebhook is Katib's pod webhook as the cluster has it, with the namespace selector of
// Katib's own manifests or none (a release that picks trial pods by their owners).
func katibWebhook(selector *metav1.LabelSelector) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "katib.kubeflow.org"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:              "mutator.pod.katib.kubeflow.org",
			ClientConfig:      admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "katib-controller", Namespace: testNS}},
			Rules:             []admissionregistrationv1.RuleWithOperations{{Rule: admissionregistrationv1.Rule{Resources: []string{"pods"}}}},
			NamespaceSelector: selector,
		}},
	}
}

func TestExperimentNeedsNamespaceTheWebhookSees(t *testing.T) {
	f := newFakeCluster(t, nil)
	if _, err := f.typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(),
		katibWebhook(&metav1.LabelSelector{MatchLabels: katibLabels}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f.clients, options("katib"))
	if err != nil {
		t.Fatal(err)
	}
	r := result(t, rep, "experiment")
	if r.Status != Failed || !strings.Contains(r.Reason, "selects namespaces by katib.kubeflow.org/metrics-collector-injection=enabled, which namespace kf does not match") || r.Cleanup != "" {
		t.Errorf("want a failure naming the namespace label, nothing created; got %+v", r)
	}
	if list, _ := f.dyn.Resource(Experiments).Namespace(testNS).List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("an experiment was created: %v", list.Items)
	}
}

func TestExperimentRunsWhenWebhookSelectsByOwner(t *testing.T) {
	f := newFakeCluster(t, nil)
	if _, err := f.typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), katibWebhook(nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.control(t, map[string]behaviour{"Experiment": experimentSucceeds})
	rep, err := Run(context.Background(), f.clients, options("katib"))
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, rep, "experiment"); r.Status != Passed {
		t.Errorf("want passed, got %+v", r)
	}
}

func TestExperimentSucceededWithoutMetricFails(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"conditions": condition1("Succeeded", "ExperimentMaxTrialsReached", ""), "trialsSucceeded": int64(3),
	}}}
	v := judgeExperiment(obj, nil)
	if !v.Done || v.Pass || !strings.Contains(v.Reason, "no accuracy metric was collected") {
		t.Errorf("got %+v", v)
	}
}

func TestWorkloadsUseImagesAndParams(t *testing.T) {
	opts := options(allComponents...)
	opts.Images = map[string]string{"workflow": "registry.local/busybox:1.37.0"}
	opts.Params = map[string]map[string]any{"argo": {"workflowServiceAccount": "runner"}, "katib": {"suggestions": map[string]any{"grid": "x"}}}
	ws := Workloads(opts)
	wf := ws[1].Object
	if sa, _, _ := unstructured.NestedString(wf.Object, "spec", "serviceAccountName"); sa != "runner" {
		t.Errorf("workflow service account %q, want runner", sa)
	}
	templates, _, _ := unstructured.NestedSlice(wf.Object, "spec", "templates")
	if img, _, _ := unstructured.NestedString(templates[1].(map[string]any), "container", "image"); img != "registry.local/busybox:1.37.0" {
		t.Errorf("workflow image %q", img)
	}
	if ws[2].SkipReason == "" || ws[2].Object != nil {
		t.Errorf("experiment without a random suggestion service should be skipped: %+v", ws[2])
	}
}

func TestValidate(t *testing.T) {
	o := options()
	o.GPUs, o.Timeout = 0, 0
	o.Images = map[string]string{"pytorchjob": "x"}
	err := o.Validate()
	for _, w := range []string{"at least 1", "timeout must be positive", `unknown workload "pytorchjob"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: %v, want it to mention %q", err, w)
		}
	}
	if o := options(); o.Validate() != nil {
		err := o.Validate()
		t.Errorf("valid options: %v", err)
	}
}

func TestRunGoesOnWhenLeftoversCannotBeListed(t *testing.T) {
	f := newFakeCluster(t, nil)
	// Only the run's list by label is refused; the stand-in controller lists without one.
	f.dyn.PrependReactor("list", "tfjobs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.(k8stesting.ListAction).GetListRestrictions().Labels.Empty() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(TFJobs.GroupResource(), "", errors.New("no list"))
	})
	f.control(t, map[string]behaviour{"TFJob": tfJobSucceeds})
	rep, err := Run(context.Background(), f.clients, options("tf-job-operator"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.LeftoverError, "list earlier test TFJobs in kf") || len(rep.Leftovers) != 0 {
		t.Errorf("leftovers %v, error %q", rep.Leftovers, rep.LeftoverError)
	}
	if r := result(t, rep, "tfjob"); r.Status != Passed {
		t.Errorf("the run should go on: %+v", r)
	}
}

// TestWorkloadsCarryThePullSecrets: with pull secrets, the TFJob's and the trials' pod
// templates and the Workflow (whose spec Argo copies into each of its pods) name them; without,
// no workload names any.
func TestWorkloadsCarryThePullSecrets(t *testing.T) {
	holders := func(w Workload) []map[string]any {
		spec := w.Object.Object["spec"].(map[string]any)
		switch w.Name {
		case "tfjob":
			return []map[string]any{spec["tfReplicaSpecs"].(map[string]any)["Worker"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)}
		case "workflow":
			return []map[string]any{spec}
		case "experiment":
			job := spec["trialTemplate"].(map[string]any)["trialSpec"].(map[string]any)["spec"].(map[string]any)
			return []map[string]any{job["template"].(map[string]any)["spec"].(map[string]any)}
		}
		t.Fatalf("unknown workload %s", w.Name)
		return nil
	}
	opts := options(allComponents...)
	opts.PullSecrets = []string{"regcred", "mirror-login"}
	for _, w := range Workloads(opts) {
		if w.Object == nil {
			t.Fatalf("%s skipped: %s", w.Name, w.SkipReason)
		}
		for _, h := range holders(w) {
			got, _ := h["imagePullSecrets"].([]any)
			if len(got) != 2 || got[0].(map[string]any)["name"] != "regcred" || got[1].(map[string]any)["name"] != "mirror-login" {
				t.Errorf("%s: imagePullSecrets %v, want regcred, mirror-login", w.Name, got)
			}
		}
		// The object is sent as JSON: DeepCopy panics on a value it cannot copy.
		_ = w.Object.DeepCopy()
	}
	for _, w := range Workloads(options(allComponents...)) {
		for _, h := range holders(w) {
			if _, ok := h["imagePullSecrets"]; ok {
				t.Errorf("%s names pull secrets without any configured", w.Name)
			}
		}
	}
}

// A TFJob that succeeds without its worker's report of a GPU fails: nothing shows that the check
// ran (the pod was deleted, or the image ran another command).
func TestRunFailsWithoutGPUReport(t *testing.T) {
	for _, c := range []struct {
		name   string
		pod    bool
		msg    string
		reason []string
	}{
		{"no pod", false, "", []string{"the TFJob succeeded, but its worker reported no GPU"}},
		{"no message", true, "", []string{"reported no GPU", "was its pod deleted"}},
		{"another message", true, "hello", []string{"reported no GPU", "it said: hello"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster(t, katibLabels)
			f.control(t, map[string]behaviour{"TFJob": func(t *testing.T, f *fakeCluster, obj *unstructured.Unstructured) map[string]any {
				if c.pod {
					f.createPod(t, obj.GetName()+"-worker-0", tfJobPodLabels(obj), terminated("tensorflow", 0, c.msg))
				}
				return map[string]any{"conditions": condition1("Succeeded", "TFJobSucceeded", "TFJob kf/x successfully completed.")}
			}})
			rep, err := Run(context.Background(), f.clients, options("tf-job-operator"))
			if err != nil {
				t.Fatal(err)
			}
			r := result(t, rep, "tfjob")
			if rep.Passed || r.Status != Failed {
				t.Fatalf("want failed, got %+v", r)
			}
			for _, w := range c.reason {
				if !strings.Contains(r.Reason, w) {
					t.Errorf("reason %q lacks %q", r.Reason, w)
				}
			}
		})
	}
}
