//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var tfjobsResource = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"}

// appWithTFJobs applies core and tf-job-operator; TFJobs are admitted on the CRD schema alone
// where the component has a webhook (no operator serves it here).
func (e *env) appWithTFJobs(t *testing.T) (string, string) {
	t.Helper()
	appDir, ns := e.newApp(t, "--components", "core,tf-job-operator")
	e.cleanupNamespace(t, ns)
	if r := e.run(t, appDir, "param", "set", "tf-job-operator", "webhookFailurePolicy", "Ignore"); r.code != 0 && !strings.Contains(r.stderr, "has no parameter") {
		t.Fatalf("param set: %s", r.stderr)
	}
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	t.Cleanup(func() { e.run(t, appDir, "delete", "--yes") })
	return appDir, ns
}

// testReport is the -o json document of `kfdeploy test`.
type testReport struct {
	Passed        bool `json:"passed"`
	Run           string
	NothingToTest bool `json:"nothingToTest"`
	Results       []struct {
		Workload string `json:"workload"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Object   string `json:"object"`
		Cleanup  string `json:"cleanup"`
	} `json:"results"`
	Summary struct {
		Passed, Failed, Skipped int
	} `json:"summary"`
}

func parseTestReport(t *testing.T, r result) testReport {
	t.Helper()
	var rep testReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("parse kfdeploy test -o json: %v\n%s", err, r.stdout)
	}
	return rep
}

// TestSmokeTestSkipsMissingComponents: an app without tf-job-operator, argo and katib has
// nothing to test: every workload is skipped and the command fails saying so, unless
// --allow-nothing accepts it.
func TestSmokeTestSkipsMissingComponents(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")

	r := e.run(t, appDir, "test", "-o", "json")
	rep := parseTestReport(t, r)
	if r.code != 1 || rep.Passed || !rep.NothingToTest || rep.Summary.Skipped != 3 || rep.Summary.Passed+rep.Summary.Failed != 0 {
		t.Fatalf("want exit 1, 3 skipped, nothing to test and not passed; got exit %d, %+v", r.code, rep)
	}
	if !strings.Contains(r.stderr, "nothing to test") || !strings.Contains(r.stderr, "--allow-nothing") {
		t.Errorf("stderr does not say there was nothing to test and how to accept it: %s", r.stderr)
	}
	rep = parseTestReport(t, e.mustRun(t, appDir, "test", "--allow-nothing", "-o", "json"))
	if !rep.Passed || !rep.NothingToTest {
		t.Fatalf("--allow-nothing: want passed with nothing to test, got %+v", rep)
	}
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.Reason, "the app has no ") || r.Object != "" {
			t.Errorf("%s: %+v", r.Workload, r)
		}
	}
	text := e.mustRun(t, appDir, "test", "--allow-nothing")
	if !strings.Contains(text.stdout, "0 passed, 0 failed, 3 skipped") {
		t.Errorf("text summary: %s", text.stdout)
	}
}

// TestSmokeTestTimesOutWithoutOperator: the local cluster runs no training operator (its pod is
// simulated), so no TFJob pod ever appears; the test fails within --timeout, says what it waited
// for, and deletes its TFJob.
func TestSmokeTestTimesOutWithoutOperator(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.appWithTFJobs(t)

	r := e.run(t, appDir, "test", "--timeout", "8s", "-o", "json")
	wantExit(t, r, 1)
	rep := parseTestReport(t, r)
	if rep.Passed || rep.Summary.Failed != 1 || rep.Summary.Skipped != 2 {
		t.Fatalf("want tfjob failed and 2 skipped, got %+v", rep)
	}
	var tfjob string
	for _, res := range rep.Results {
		if res.Workload != "tfjob" {
			continue
		}
		tfjob = res.Object
		for _, w := range []string{"timed out after 8s waiting for TFJob " + ns + "/kfdeploy-test-tfjob-", "no pods were created: is the tf-job-operator controller running?"} {
			if !strings.Contains(res.Reason, w) {
				t.Errorf("reason %q lacks %q", res.Reason, w)
			}
		}
		if res.Cleanup != "deleted" {
			t.Errorf("cleanup %q, want deleted", res.Cleanup)
		}
	}
	if !strings.Contains(r.stderr, "test of app app in namespace "+ns+" failed: tfjob (tf-job-operator)") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("stderr should be one line naming the failed workload: %q", r.stderr)
	}

	// The TFJob is gone (it has no finalizer; deletion is immediate).
	list, err := e.dyn.Resource(tfjobsResource).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "kfdeploy.dev/test=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("the test left %s behind: %d TFJobs labelled kfdeploy.dev/test", tfjob, len(list.Items))
	}

	// --keep leaves the workload; the next run removes it.
	kept := parseTestReport(t, e.run(t, appDir, "test", "--timeout", "3s", "--keep", "-o", "json"))
	next := e.run(t, appDir, "test", "--timeout", "3s")
	if !strings.Contains(next.stdout, "removed leftover TFJob "+ns+"/kfdeploy-test-tfjob-"+kept.Run) {
		t.Errorf("the next run did not remove the kept TFJob of run %s:\n%s", kept.Run, next.stdout)
	}
}

// TestSmokeTestReportsTheSchedulersMessage: the test plays the training operator's part of
// creating the worker's pod from the TFJob (nothing else of the operator is needed for this);
// the real scheduler refuses it for want of GPUs, and `kfdeploy test` fails with the scheduler's
// own message. The pod goes with the TFJob (owner reference) when the run cleans up.
func TestSmokeTestReportsTheSchedulersMessage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.appWithTFJobs(t)

	run := e.start(t, appDir, "test", "--gpus", "2", "--pending-timeout", "0s", "--timeout", "2m", "-o", "json")
	var tfjob *unstructured.Unstructured
	eventually(t, time.Minute, "kfdeploy test creates its TFJob", func(ctx context.Context) (bool, error) {
		list, err := e.dyn.Resource(tfjobsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/test=true"})
		if err != nil || len(list.Items) == 0 {
			return false, err
		}
		tfjob = &list.Items[0]
		return true, nil
	})
	pod := workerPod(t, tfjob)
	if _, err := e.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the worker pod as the operator would: %v", err)
	}

	code, stdout, stderr := run.wait(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	rep := parseTestReport(t, result{stdout: stdout})
	for _, res := range rep.Results {
		if res.Workload != "tfjob" {
			continue
		}
		for _, w := range []string{"pod " + pod.Name + " is Pending: 0/7 nodes are available", "Insufficient nvidia.com/gpu"} {
			if res.Status != "failed" || !strings.Contains(res.Reason, w) {
				t.Errorf("tfjob: %s %q, want failed naming %q", res.Status, res.Reason, w)
			}
		}
		if res.Cleanup != "deleted" {
			t.Errorf("cleanup %q, want deleted", res.Cleanup)
		}
	}
	eventually(t, time.Minute, "the worker pod is garbage-collected with its TFJob", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return isGone(err)
	})
}

// workerPod is the pod the training operator makes of a TFJob's Worker template: the template's
// labels and spec, owned by the TFJob.
func workerPod(t *testing.T, tfjob *unstructured.Unstructured) *corev1.Pod {
	t.Helper()
	raw, found, err := unstructured.NestedMap(tfjob.Object, "spec", "tfReplicaSpecs", "Worker", "template")
	if err != nil || !found {
		t.Fatalf("TFJob %s has no Worker template: %v", tfjob.GetName(), err)
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		t.Fatalf("decode the Worker template: %v", err)
	}
	controller := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      tfjob.GetName() + "-worker-0",
			Namespace: tfjob.GetNamespace(),
			Labels:    tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "kubeflow.org/v1", Kind: "TFJob", Name: tfjob.GetName(), UID: tfjob.GetUID(), Controller: &controller,
			}},
		},
		Spec: tmpl.Spec,
	}
}

// TestSmokeTestCleansUpOnInterrupt: Ctrl-C while waiting still deletes the TFJob, and the exit
// status says interrupted.
func TestSmokeTestCleansUpOnInterrupt(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.appWithTFJobs(t)

	run := e.start(t, appDir, "test", "--timeout", "2m")
	eventually(t, time.Minute, "kfdeploy test creates its TFJob", func(ctx context.Context) (bool, error) {
		list, err := e.dyn.Resource(tfjobsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/test=true"})
		return err == nil && len(list.Items) > 0, err
	})
	if err := run.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := run.wait(t)
	if code != 130 {
		t.Errorf("exit %d after Ctrl-C, want 130", code)
	}
	if !strings.Contains(stdout, "interrupted while waiting for TFJob "+ns+"/kfdeploy-test-tfjob-") {
		t.Errorf("the report does not say the run was interrupted:\n%s", stdout)
	}
	list, err := e.dyn.Resource(tfjobsResource).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "kfdeploy.dev/test=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("Ctrl-C left %d TFJobs behind", len(list.Items))
	}
}
