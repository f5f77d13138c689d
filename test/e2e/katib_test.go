//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// TestKatibOutageSparesThePlatform applies katib with its defaults (failurePolicy Fail) while
// no Katib runs (kwok starts no container), so every call to its webhooks fails, and asks the
// real API server which pods it still admits: the platform's own pods (bare notebook pods,
// ReplicaSet pods of the gateway, Argo's workflow pods) must be admitted; pods of trial kinds
// (Job, TFJob) must be refused because Katib's pod mutator could not inject their metrics
// collector; and an Experiment is refused because its validator could not check it.
func TestKatibOutageSparesThePlatform(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core,katib")
	e.cleanupNamespace(t, ns)
	t.Cleanup(func() { e.run(t, appDir, "delete", "--purge", "--yes") })
	e.mustRun(t, appDir, "param", "set", "katib", "storageClass", `""`)
	e.mustRun(t, appDir, "generate")
	// Only the webhooks matter here: no waiting, and no PV for MySQL's claim (preflight
	// would ask for one).
	e.mustRun(t, appDir, "apply", "--wait=false", "--skip-preflight")

	pod := func(name string, owner *metav1.OwnerReference) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if owner != nil {
			// The owner need not exist: admission sees only the request's object.
			owner.Name, owner.UID = name+"-owner", "00000000-0000-0000-0000-000000000001"
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		return p
	}
	controller := func(apiVersion, kind string) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Controller: ptr.To(true)}
	}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		refused bool
	}{
		{"notebook", pod("notebook", nil), false},
		{"gateway", pod("gateway", controller("apps/v1", "ReplicaSet")), false},
		{"hub", pod("hub", controller("apps/v1", "StatefulSet")), false},
		{"workflow-step", pod("workflow-step", controller("argoproj.io/v1alpha1", "Workflow")), false},
		// Owned by a Job without being controlled by it: the condition must not error (an
		// error would apply failurePolicy Fail).
		{"job-owned-not-controlled", pod("job-owned", &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job"}), false},
		{"job-pod", pod("job-pod", controller("batch/v1", "Job")), true},
		{"tfjob-pod", pod("tfjob-pod", controller("kubeflow.org/v1", "TFJob")), true},
	}
	for _, c := range cases {
		_, err := e.kube.CoreV1().Pods(ns).Create(ctx, c.pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case c.refused && err == nil:
			t.Errorf("%s: admitted while Katib is down; want refused by mutator.pod.katib.kubeflow.org (failurePolicy Fail)", c.name)
		case c.refused && !strings.Contains(err.Error(), "mutator.pod.katib.kubeflow.org"):
			t.Errorf("%s: refused, but not by Katib's pod mutator: %v", c.name, err)
		case !c.refused && err != nil:
			t.Errorf("%s: refused while Katib is down, want admitted without Katib: %v", c.name, err)
		default:
			t.Logf("%s: refused=%v (%v)", c.name, c.refused, err)
		}
	}

	exp := sampleObject(t, "experiment-valid.yaml")
	exp.SetNamespace(ns)
	gvr := schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1beta1", Resource: "experiments"}
	_, err := e.dyn.Resource(gvr).Namespace(ns).Create(ctx, exp, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "experiment.katib.kubeflow.org") {
		t.Errorf("Experiment created while Katib's webhooks are down: got %v, want a refusal by its webhook (failurePolicy Fail)", err)
	}
}
