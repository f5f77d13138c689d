// Package manifest holds Kubernetes objects as data: identity, validation, ordering and YAML
// encoding. It never talks to a cluster.
package manifest

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ID names an object the way users read it: group/Kind namespace/name.
type ID struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// IDOf returns the identity of an object.
func IDOf(o *unstructured.Unstructured) ID {
	gvk := o.GroupVersionKind()
	return ID{Group: gvk.Group, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// GroupKind of the object.
func (id ID) GroupKind() schema.GroupKind { return schema.GroupKind{Group: id.Group, Kind: id.Kind} }

// String reads like kubectl's "kind.group/name" with the namespace first: "kubeflow/Deployment.apps/jupyter".
func (id ID) String() string {
	kind := id.Kind
	if id.Group != "" {
		kind += "." + id.Group
	}
	if id.Namespace == "" {
		return kind + "/" + id.Name
	}
	return id.Namespace + "/" + kind + "/" + id.Name
}

// Validate checks the fields every object needs before it can be applied.
func Validate(o *unstructured.Unstructured) error {
	var missing []string
	if o.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if o.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if o.GetName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s %q has no %s", o.GetKind(), o.GetName(), strings.Join(missing, ", "))
	}
	return nil
}

// Apply levels: objects of a level are applied (concurrently) only after every object of the
// levels before it; delete walks the levels backwards.
const (
	LevelFoundation = iota // Namespaces, CRDs: everything else may depend on them
	LevelConfig            // RBAC, ServiceAccounts, ConfigMaps, Secrets, storage, Services
	LevelWorkload          // Deployments, StatefulSets, DaemonSets, Jobs
	LevelWebhook           // admission webhooks and API services, once their backends exist
	LevelCustom            // custom resources, whose controllers and webhooks come first
	NumLevels
)

// kindOrder ranks the built-in kinds; the rank also orders kinds inside a level.
var kindOrder = map[schema.GroupKind]int{}

func init() {
	levels := [][]string{
		LevelFoundation: {"Namespace", "CustomResourceDefinition.apiextensions.k8s.io"},
		LevelConfig: {
			"PriorityClass.scheduling.k8s.io", "StorageClass.storage.k8s.io", "PersistentVolume",
			"ResourceQuota", "LimitRange", "PodSecurityPolicy.policy",
			"ServiceAccount", "ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io",
			"Role.rbac.authorization.k8s.io", "RoleBinding.rbac.authorization.k8s.io",
			"Secret", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy.networking.k8s.io",
			"Service", "IngressClass.networking.k8s.io", "Ingress.networking.k8s.io",
		},
		LevelWorkload: {
			"DaemonSet.apps", "Pod", "ReplicaSet.apps", "Deployment.apps", "StatefulSet.apps",
			"HorizontalPodAutoscaler.autoscaling", "PodDisruptionBudget.policy", "Job.batch", "CronJob.batch",
		},
		LevelWebhook: {
			"APIService.apiregistration.k8s.io",
			"MutatingWebhookConfiguration.admissionregistration.k8s.io",
			"ValidatingWebhookConfiguration.admissionregistration.k8s.io",
			"ValidatingAdmissionPolicy.admissionregistration.k8s.io",
			"ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io",
		},
	}
	rank := 0
	for _, kinds := range levels {
		for _, k := range kinds {
			kindOrder[schema.ParseGroupKind(k)] = rank
			rank++
		}
	}
	levelStart = [NumLevels]int{0, len(levels[0]), len(levels[0]) + len(levels[1]),
		len(levels[0]) + len(levels[1]) + len(levels[2]), rank}
}

var levelStart [NumLevels]int

// rankOf orders kinds; unknown kinds (custom resources) come last.
func rankOf(gk schema.GroupKind) int {
	if r, ok := kindOrder[gk]; ok {
		return r
	}
	return len(kindOrder)
}

// Level returns the apply level of a kind.
func Level(gk schema.GroupKind) int {
	r := rankOf(gk)
	for l := NumLevels - 1; l >= 0; l-- {
		if r >= levelStart[l] {
			return l
		}
	}
	return LevelCustom
}

// Less orders objects for output and apply: by kind rank, then kind, namespace and name.
func Less(a, b *unstructured.Unstructured) bool {
	ia, ib := IDOf(a), IDOf(b)
	ra, rb := rankOf(ia.GroupKind()), rankOf(ib.GroupKind())
	if ra != rb {
		return ra < rb
	}
	if ia.Group != ib.Group {
		return ia.Group < ib.Group
	}
	if ia.Kind != ib.Kind {
		return ia.Kind < ib.Kind
	}
	if ia.Namespace != ib.Namespace {
		return ia.Namespace < ib.Namespace
	}
	return ia.Name < ib.Name
}

// Sort orders objects stably with Less.
func Sort(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return Less(objs[i], objs[j]) })
}

// ByLevel splits sorted objects into apply levels.
func ByLevel(objs []*unstructured.Unstructured) [NumLevels][]*unstructured.Unstructured {
	var levels [NumLevels][]*unstructured.Unstructured
	for _, o := range objs {
		l := Level(IDOf(o).GroupKind())
		levels[l] = append(levels[l], o)
	}
	return levels
}
