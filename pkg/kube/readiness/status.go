package readiness

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// ObjectStatus is the readiness of one live member of an app.
type ObjectStatus struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Status reads every member of the set and computes its kstatus readiness.
func Status(ctx context.Context, c *kube.Client, s inventory.ApplySet) ([]ObjectStatus, error) {
	inv, err := inventory.Read(ctx, c, s)
	if err != nil {
		return nil, err
	}
	if !inv.Exists {
		return nil, inventory.ErrNotFound
	}
	members, err := inventory.ListMembers(ctx, c, s, inv.GroupKinds, inv.Namespaces)
	if err != nil {
		return nil, err
	}
	groups := map[kube.GroupKey]bool{}
	for _, m := range members {
		groups[kube.GroupKey{Resource: m.Mapping.Resource, Namespace: m.ID.Namespace}] = true
	}
	var out []ObjectStatus
	for k := range groups {
		items, err := c.ListObjects(ctx, k, s.Selector())
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		for i := range items {
			r, err := status.Compute(&items[i])
			if err != nil {
				r = &status.Result{Status: status.UnknownStatus, Message: err.Error()}
			}
			out = append(out, ObjectStatus{ID: manifest.IDOf(&items[i]).String(), Status: string(r.Status), Message: r.Message})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PodStatus is one line of the pod table.
type PodStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Ready     string `json:"ready"`
	Phase     string `json:"phase"`
	Node      string `json:"node"`
}

// Pods lists the pods of a namespace.
func Pods(ctx context.Context, c *kube.Client, namespace string) ([]PodStatus, error) {
	pods, err := c.Typed.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	out := make([]PodStatus, 0, len(pods.Items))
	for _, p := range pods.Items {
		ready := 0
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
		}
		out = append(out, PodStatus{Namespace: p.Namespace, Name: p.Name, Ready: fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)),
			Phase: string(p.Status.Phase), Node: p.Spec.NodeName})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
