package topnodes

import (
	corev1 "k8s.io/api/core/v1"
)

// PodRequest is the amount of an extended resource that the scheduler reserves for a pod: the
// larger of (app containers + sidecars) and the largest init container (+ the sidecars started
// before it), plus the pod overhead. It mirrors k8s.io/component-helpers' PodRequests for one
// resource, without importing the scheduler.
func PodRequest(spec *corev1.PodSpec, name corev1.ResourceName) int64 {
	var sum int64
	for i := range spec.Containers {
		sum += containerRequest(&spec.Containers[i], name)
	}
	var sidecars, initMax int64
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		req := containerRequest(c, name)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			// A sidecar keeps running next to the app containers and the later init containers.
			sidecars += req
			initMax = max(initMax, sidecars)
			continue
		}
		initMax = max(initMax, req+sidecars)
	}
	total := max(sum+sidecars, initMax)
	if q, ok := spec.Overhead[name]; ok {
		total += q.Value()
	}
	return total
}

// containerRequest reads the request, or the limit when no request is set: for extended
// resources the API server defaults one from the other, and manifests are read before defaulting.
func containerRequest(c *corev1.Container, name corev1.ResourceName) int64 {
	if q, ok := c.Resources.Requests[name]; ok {
		return q.Value()
	}
	if q, ok := c.Resources.Limits[name]; ok {
		return q.Value()
	}
	return 0
}
