package readiness

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func terminating(conds ...corev1.NamespaceCondition) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeflow"},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating, Conditions: conds}}
}

func TestDescribeStuckNamespaceNamesObjectFinalizerConditionAndRemedy(t *testing.T) {
	st := &stuckNamespace{
		ns: terminating(
			corev1.NamespaceCondition{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue,
				Message: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"},
			corev1.NamespaceCondition{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionFalse, Message: "All resources successfully discovered"},
		),
		left: []leftKind{
			{gvr: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, kind: "Widget.example.com",
				objects: []leftObject{{name: "held", finalizers: []string{"example.com/hold"}}}},
		},
	}
	got := st.describe()
	for _, want := range []string{
		"namespace kubeflow is still Terminating:",
		"condition NamespaceFinalizersRemaining: Some content in the namespace has finalizers remaining",
		"left: Widget.example.com (1): held (finalizers: example.com/hold)",
		"likely cause: finalizer example.com/hold on 1 object (Widget.example.com/held)",
		"no running controller removes it",
		`kubectl patch widgets.example.com held -n kubeflow --type=merge -p '{"metadata":{"finalizers":null}}'`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation does not contain %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NamespaceDeletionDiscoveryFailure") {
		t.Errorf("a condition that is False is shown:\n%s", got)
	}
}

func TestDescribeStuckNamespaceNamesUnavailableAPIService(t *testing.T) {
	gv := schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	st := &stuckNamespace{
		ns: terminating(corev1.NamespaceCondition{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionTrue,
			Message: "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1"}),
		failed:      map[schema.GroupVersion]error{gv: errors.New("the server is currently unable to handle the request")},
		unavailable: []apiServiceState{{name: "v1beta1.metrics.k8s.io", reason: "FailedDiscoveryCheck", message: "failing or missing response"}},
	}
	got := st.describe()
	for _, want := range []string{
		"condition NamespaceDeletionDiscoveryFailure: Discovery failed for some groups",
		"likely cause: APIService v1beta1.metrics.k8s.io is not Available (FailedDiscoveryCheck: failing or missing response)",
		"kubectl delete apiservice v1beta1.metrics.k8s.io",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation does not contain %q:\n%s", want, got)
		}
	}
	// Without the APIService list, the failing group itself is the cause.
	st.unavailable = nil
	if got := st.describe(); !strings.Contains(got, "discovery fails for metrics.k8s.io/v1beta1") {
		t.Errorf("explanation does not name the failing group:\n%s", got)
	}
}

func TestDescribeStuckNamespaceBoundsNamesPerKind(t *testing.T) {
	k := leftKind{gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, kind: "ConfigMap"}
	for i := range 8 {
		k.objects = append(k.objects, leftObject{name: fmt.Sprintf("cm-%d", i)})
	}
	got := (&stuckNamespace{ns: terminating(), left: []leftKind{k}}).describe()
	if !strings.Contains(got, "left: ConfigMap (8): cm-0, cm-1, cm-2, cm-3, cm-4 and 3 more") {
		t.Errorf("explanation does not bound the names:\n%s", got)
	}
	if (&stuckNamespace{}).describe() != "" {
		t.Error("a namespace that is gone is described")
	}
}
