//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	exitCodeAnnotation  = "harness.kfdeploy.dev/exit-code"
	failCountAnnotation = "harness.kfdeploy.dev/fail-count"
)

// TestPodStages checks the local cluster's kwok stages (scripts/lib/stages.yaml):
// pods controlled by a TFJob, PyTorchJob, Workflow or Trial complete; an
// exit-code annotation fails a pod (restartPolicy Never) or restarts its
// containers (OnFailure), up to a fail count; Jobs' pods complete by kwok's
// defaults, and fail when annotated, so a Job's backoff limit triggers.
//
// The owners are bare owner references (no such object exists; the CRDs may
// not be installed). A second, non-controller owner reference to a real
// ConfigMap keeps the garbage collector from deleting the pods as dependents
// of a missing owner when the kinds' CRDs happen to be installed.
func TestPodStages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("stages")
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cleanupNamespace(t, ns)
	anchor, err := e.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "anchor"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	owned := func(apiVersion, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{
			{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", len(kind))), Controller: &yes},
			{APIVersion: "v1", Kind: "ConfigMap", Name: anchor.Name, UID: anchor.UID},
		}
	}
	pod := func(name string, owners []metav1.OwnerReference, policy corev1.RestartPolicy, ann map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners, Annotations: ann},
			Spec: corev1.PodSpec{
				RestartPolicy: policy,
				Containers: []corev1.Container{
					{Name: "main", Image: "stages.invalid/main:v1"},
					{Name: "side", Image: "stages.invalid/side:v1"},
				},
			},
		}
	}
	create := func(p *corev1.Pod) {
		t.Helper()
		if _, err := e.kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}
	completing := map[string][]metav1.OwnerReference{
		"tfjob":      owned("kubeflow.org/v1", "TFJob"),
		"pytorchjob": owned("kubeflow.org/v1", "PyTorchJob"),
		"workflow":   owned("argoproj.io/v1alpha1", "Workflow"),
		"trial":      owned("kubeflow.org/v1beta1", "Trial"),
	}
	for name, owners := range completing {
		create(pod(name, owners, corev1.RestartPolicyNever, nil))
	}
	create(pod("plain", nil, corev1.RestartPolicyAlways, nil))
	create(pod("fail-never", owned("kubeflow.org/v1", "TFJob"), corev1.RestartPolicyNever, map[string]string{exitCodeAnnotation: "3"}))
	create(pod("restart-forever", owned("kubeflow.org/v1", "TFJob"), corev1.RestartPolicyOnFailure, map[string]string{exitCodeAnnotation: "2"}))
	create(pod("restart-then-succeed", owned("kubeflow.org/v1", "PyTorchJob"), corev1.RestartPolicyOnFailure,
		map[string]string{exitCodeAnnotation: "4", failCountAnnotation: "2"}))

	get := func(ctx context.Context, name string) (*corev1.Pod, error) {
		return e.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	}
	phase := func(name string, want corev1.PodPhase) {
		t.Helper()
		eventually(t, 90*time.Second, "pod "+name+" "+string(want), func(ctx context.Context) (bool, error) {
			p, err := get(ctx, name)
			if err != nil {
				return false, err
			}
			if p.Status.Phase == corev1.PodFailed && want != corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded && want != corev1.PodSucceeded {
				return false, fmt.Errorf("pod %s is %s, want %s", name, p.Status.Phase, want)
			}
			return p.Status.Phase == want, nil
		})
	}
	terminated := func(name string, code int32) {
		t.Helper()
		p, err := get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Status.ContainerStatuses) != 2 {
			t.Fatalf("pod %s has %d container statuses, want 2", name, len(p.Status.ContainerStatuses))
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != code {
				t.Errorf("pod %s container %s: state %+v, want terminated with exit code %d", name, cs.Name, cs.State, code)
			}
		}
	}
	for name := range completing {
		phase(name, corev1.PodSucceeded)
		terminated(name, 0)
	}
	phase("fail-never", corev1.PodFailed)
	terminated("fail-never", 3)

	// Restarts: Running, restartCount growing, the last exit code in lastState.
	eventually(t, 90*time.Second, "pod restart-forever restarts twice", func(ctx context.Context) (bool, error) {
		p, err := get(ctx, "restart-forever")
		if err != nil {
			return false, err
		}
		if p.Status.Phase != corev1.PodRunning {
			return false, fmt.Errorf("pod restart-forever is %s, want Running (a restart, not a failed pod)", p.Status.Phase)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount < 2 {
				return false, nil
			}
			if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 || cs.State.Running == nil {
				return false, fmt.Errorf("container %s after %d restarts: state %+v, lastState %+v; want running, last terminated with 2", cs.Name, cs.RestartCount, cs.State, cs.LastTerminationState)
			}
		}
		return true, nil
	})
	phase("restart-then-succeed", corev1.PodSucceeded)
	if p, err := get(ctx, "restart-then-succeed"); err != nil {
		t.Fatal(err)
	} else {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 2 {
				t.Errorf("restart-then-succeed container %s: restartCount %d, want the fail count 2", cs.Name, cs.RestartCount)
			}
		}
	}
	terminated("restart-then-succeed", 0)

	// Without an owner of these kinds a pod keeps running (kwok's default).
	if p, err := get(ctx, "plain"); err != nil || p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod plain: %v, %v; want Running", p.Status.Phase, err)
	}

	// Jobs: kwok's default stage completes their pods; annotated ones fail
	// until the backoff limit fails the Job.
	job := func(name string, ann map[string]string) {
		t.Helper()
		zero := int32(0)
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{
				BackoffLimit: &zero,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Annotations: ann},
					Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{Name: "main", Image: "stages.invalid/main:v1"}}},
				},
			},
		}
		if _, err := e.kube.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	job("job-ok", nil)
	job("job-fail", map[string]string{exitCodeAnnotation: "1"})
	jobCondition := func(name string, want batchv1.JobConditionType) {
		t.Helper()
		eventually(t, 90*time.Second, "job "+name+" "+string(want), func(ctx context.Context) (bool, error) {
			j, err := e.kube.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue {
					continue
				}
				if c.Type == want {
					return true, nil
				}
				if c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed {
					return false, fmt.Errorf("job %s is %s (%s), want %s", name, c.Type, c.Message, want)
				}
			}
			return false, nil
		})
	}
	jobCondition("job-ok", batchv1.JobComplete)
	jobCondition("job-fail", batchv1.JobFailed)
}
