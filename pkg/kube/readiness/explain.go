package readiness

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// explain finds why an object is not ready: for workloads, the first pod that is not ready and
// its reason (scheduling, image, crash); otherwise the newest warning event of the object.
func (c client) explain(ctx context.Context, k kube.GroupKey, name string) string {
	switch k.Resource.Resource {
	case "deployments", "statefulsets", "daemonsets", "replicasets", "jobs":
		obj, err := c.Dynamic.Resource(k.Resource).Namespace(k.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.explainPods(ctx, obj)
	case "pods":
		pod, err := c.Typed.CoreV1().Pods(k.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.podReason(ctx, pod)
	}
	return c.lastWarning(ctx, k.Namespace, name)
}

func (c client) explainPods(ctx context.Context, workload *unstructured.Unstructured) string {
	matchLabels, _, _ := unstructured.NestedStringMap(workload.Object, "spec", "selector", "matchLabels")
	if len(matchLabels) == 0 {
		return c.lastWarning(ctx, workload.GetNamespace(), workload.GetName())
	}
	pods, err := c.Typed.CoreV1().Pods(workload.GetNamespace()).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(matchLabels).String(),
	})
	if err != nil {
		return ""
	}
	if len(pods.Items) == 0 {
		if why := c.lastWarning(ctx, workload.GetNamespace(), workload.GetName()); why != "" {
			return why
		}
		return "no pods created"
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		if !podReady(&pods.Items[i]) {
			return c.podReason(ctx, &pods.Items[i])
		}
	}
	return ""
}

func podReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podReason reads like "pod katib-mysql-0: Pending: 0/7 nodes are available: ...".
func (c client) podReason(ctx context.Context, pod *corev1.Pod) string {
	reason := string(pod.Status.Phase)
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Message != "" {
			return fmt.Sprintf("pod %s: %s: %s", pod.Name, reason, cond.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("pod %s: %s: container %s %s: %s", pod.Name, reason, cs.Name, w.Reason, w.Message)
		}
	}
	if why := c.lastWarning(ctx, pod.Namespace, pod.Name); why != "" {
		return fmt.Sprintf("pod %s: %s: %s", pod.Name, reason, why)
	}
	return fmt.Sprintf("pod %s: %s", pod.Name, reason)
}

// lastWarning returns the message of the newest Warning event about a named object.
func (c client) lastWarning(ctx context.Context, namespace, name string) string {
	events, err := c.Typed.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("involvedObject.name", name),
			fields.OneTermEqualSelector("type", corev1.EventTypeWarning),
		).String(),
	})
	if err != nil || len(events.Items) == 0 {
		return ""
	}
	newest := events.Items[0]
	for _, e := range events.Items[1:] {
		if eventTime(&e).After(eventTime(&newest).Time) {
			newest = e
		}
	}
	return strings.TrimSpace(newest.Reason + ": " + newest.Message)
}

func eventTime(e *corev1.Event) metav1.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp
	}
	if !e.EventTime.IsZero() {
		return metav1.NewTime(e.EventTime.Time)
	}
	return e.CreationTimestamp
}
