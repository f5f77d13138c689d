package preflight

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// workload is a manifest object that runs pods: its pod template and how many pods run at once.
type workload struct {
	id       manifest.ID
	spec     corev1.PodSpec
	replicas int64
	daemon   bool // one pod on every node that the template fits
}

// workloadOf reads a workload from a manifest object; ok is false for other kinds.
func workloadOf(id manifest.ID, o *unstructured.Unstructured) (workload, bool, error) {
	path := manifest.PodSpecPath(id.GroupKind())
	if path == nil {
		return workload{}, false, nil
	}
	w := workload{id: id, replicas: 1, daemon: id.Kind == "DaemonSet"}
	raw, found, err := unstructured.NestedMap(o.Object, path...)
	if err != nil || !found {
		return workload{}, false, fmt.Errorf("%s: no pod template at .%s", id, strings.Join(path, "."))
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &w.spec); err != nil {
		return workload{}, false, fmt.Errorf("%s: read pod template: %w", id, err)
	}
	switch id.Kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		if n, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas"); found {
			w.replicas = n
		}
	case "Job":
		if n, found, _ := unstructured.NestedInt64(o.Object, "spec", "parallelism"); found {
			w.replicas = n
		}
	case "CronJob":
		if n, found, _ := unstructured.NestedInt64(o.Object, "spec", "jobTemplate", "spec", "parallelism"); found {
			w.replicas = n
		}
	}
	return w, true, nil
}

// ownedPods recognises the pods that the app's own workloads already run, so that re-applying
// an app does not count its running pods' GPUs as taken by someone else.
type ownedPods struct {
	// byOwner: namespace/Kind/name of a direct controller; deployments and cronjobs by name
	// (their pods' owners are ReplicaSets and Jobs named "<name>-<suffix>").
	byOwner     map[string]bool
	deployments map[string]bool
	cronJobs    map[string]bool
}

func newOwnedPods(ws []workload) *ownedPods {
	o := &ownedPods{byOwner: map[string]bool{}, deployments: map[string]bool{}, cronJobs: map[string]bool{}}
	for _, w := range ws {
		key := w.id.Namespace + "/" + w.id.Kind + "/" + w.id.Name
		switch w.id.Kind {
		case "Deployment":
			o.deployments[w.id.Namespace+"/"+w.id.Name] = true
		case "CronJob":
			o.cronJobs[w.id.Namespace+"/"+w.id.Name] = true
		default:
			o.byOwner[key] = true
		}
	}
	return o
}

// owns reports whether a pod belongs to one of the app's workloads.
func (o *ownedPods) owns(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return o.byOwner[pod.Namespace+"/Pod/"+pod.Name]
	}
	if o.byOwner[pod.Namespace+"/"+ref.Kind+"/"+ref.Name] {
		return true
	}
	// "<deployment>-<pod-template-hash>" and "<cronjob>-<scheduled time>": one suffix segment.
	if i := strings.LastIndexByte(ref.Name, '-'); i > 0 {
		parent := pod.Namespace + "/" + ref.Name[:i]
		switch ref.Kind {
		case "ReplicaSet":
			return o.deployments[parent]
		case "Job":
			return o.cronJobs[parent]
		}
	}
	return false
}
