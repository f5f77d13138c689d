package manifest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

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

// LevelName says what a level holds, for progress lines.
func LevelName(level int) string {
	switch level {
	case LevelFoundation:
		return "namespaces and CRDs"
	case LevelConfig:
		return "configuration, RBAC, storage and services"
	case LevelWorkload:
		return "workloads"
	case LevelWebhook:
		return "webhooks and API services"
	}
	return "custom resources"
}

// builtinKind is one built-in kind with its level; the position in builtinKinds is its rank,
// which also orders kinds inside a level.
type builtinKind struct {
	group, kind string
	level       int
}

// builtinKinds, in apply order. Kinds not listed (custom resources) come last.
var builtinKinds = [...]builtinKind{
	{"", "Namespace", LevelFoundation},
	{"apiextensions.k8s.io", "CustomResourceDefinition", LevelFoundation},

	{"scheduling.k8s.io", "PriorityClass", LevelConfig},
	{"storage.k8s.io", "StorageClass", LevelConfig},
	{"", "PersistentVolume", LevelConfig},
	{"", "ResourceQuota", LevelConfig},
	{"", "LimitRange", LevelConfig},
	{"policy", "PodSecurityPolicy", LevelConfig},
	{"", "ServiceAccount", LevelConfig},
	{"rbac.authorization.k8s.io", "ClusterRole", LevelConfig},
	{"rbac.authorization.k8s.io", "ClusterRoleBinding", LevelConfig},
	{"rbac.authorization.k8s.io", "Role", LevelConfig},
	{"rbac.authorization.k8s.io", "RoleBinding", LevelConfig},
	{"", "Secret", LevelConfig},
	{"", "ConfigMap", LevelConfig},
	{"", "PersistentVolumeClaim", LevelConfig},
	{"networking.k8s.io", "NetworkPolicy", LevelConfig},
	{"", "Service", LevelConfig},
	{"networking.k8s.io", "IngressClass", LevelConfig},
	{"networking.k8s.io", "Ingress", LevelConfig},

	{"apps", "DaemonSet", LevelWorkload},
	{"", "Pod", LevelWorkload},
	{"apps", "ReplicaSet", LevelWorkload},
	{"apps", "Deployment", LevelWorkload},
	{"apps", "StatefulSet", LevelWorkload},
	{"autoscaling", "HorizontalPodAutoscaler", LevelWorkload},
	{"policy", "PodDisruptionBudget", LevelWorkload},
	{"batch", "Job", LevelWorkload},
	{"batch", "CronJob", LevelWorkload},

	{"apiregistration.k8s.io", "APIService", LevelWebhook},
	{"admissionregistration.k8s.io", "MutatingWebhookConfiguration", LevelWebhook},
	{"admissionregistration.k8s.io", "ValidatingWebhookConfiguration", LevelWebhook},
	{"admissionregistration.k8s.io", "ValidatingAdmissionPolicy", LevelWebhook},
	{"admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", LevelWebhook},
}

// rankOf orders kinds and gives their level; unknown kinds (custom resources) come last.
func rankOf(gk schema.GroupKind) (rank, level int) {
	for i, k := range builtinKinds {
		if k.kind == gk.Kind && k.group == gk.Group {
			return i, k.level
		}
	}
	return len(builtinKinds), LevelCustom
}

// Level returns the apply level of a kind.
func Level(gk schema.GroupKind) int {
	_, l := rankOf(gk)
	return l
}

// IsNamespace reports whether the object is a core Namespace.
func (id ID) IsNamespace() bool { return id.Group == "" && id.Kind == "Namespace" }

// IsCRD reports whether the object is a CustomResourceDefinition.
func (id ID) IsCRD() bool {
	return id.Group == "apiextensions.k8s.io" && id.Kind == "CustomResourceDefinition"
}

// Scoped returns the identity an object has once its kind's scope is known: a namespaced
// object without a namespace goes to defaultNamespace; a cluster-scoped one has none. This is
// what the API server would make of it.
func (id ID) Scoped(namespaced bool, defaultNamespace string) ID {
	switch {
	case !namespaced:
		id.Namespace = ""
	case id.Namespace == "":
		id.Namespace = defaultNamespace
	}
	return id
}

// PodSpecPath locates the pod spec in an object of a workload kind; nil for other kinds.
func PodSpecPath(gk schema.GroupKind) []string {
	switch {
	case gk.Group == "" && gk.Kind == "Pod":
		return []string{"spec"}
	case (gk.Group == "apps" || gk.Group == "extensions") && (gk.Kind == "Deployment" || gk.Kind == "StatefulSet" || gk.Kind == "ReplicaSet" || gk.Kind == "DaemonSet"):
		return []string{"spec", "template", "spec"}
	case gk.Group == "batch" && gk.Kind == "Job":
		return []string{"spec", "template", "spec"}
	case gk.Group == "batch" && gk.Kind == "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	return nil
}

// clusterScoped lists the built-in kinds that live outside any namespace.
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                                    true,
	{Group: "", Kind: "PersistentVolume"}:                                             true,
	{Group: "", Kind: "Node"}:                                                         true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "policy", Kind: "PodSecurityPolicy"}:                                      true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                   true,
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                                 true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "resource.k8s.io", Kind: "DeviceClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                        true,
}

// Scopes tells, without a cluster, whether objects of a kind live in a namespace: built-in
// kinds by their known scope, kinds defined by a CRD among the objects by its spec.scope, and
// any other kind is taken as namespaced, as most custom resources are.
type Scopes map[schema.GroupKind]bool

// ScopesOf collects the scopes of the kinds that the CRDs among objs define.
func ScopesOf(objs []*unstructured.Unstructured) Scopes {
	s := Scopes{}
	for _, o := range objs {
		if !IDOf(o).IsCRD() {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		s[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return s
}

// Namespaced reports whether objects of kind gk live in a namespace.
func (s Scopes) Namespaced(gk schema.GroupKind) bool {
	if namespaced, ok := s[gk]; ok {
		return namespaced
	}
	return !clusterScoped[gk]
}

// DefaultedID is the identity of o once the API server has defaulted its namespace: a
// namespaced object without one goes to defaultNamespace, a cluster-scoped one has none.
func (s Scopes) DefaultedID(o *unstructured.Unstructured, defaultNamespace string) ID {
	id := IDOf(o)
	return id.Scoped(s.Namespaced(id.GroupKind()), defaultNamespace)
}
