package readiness

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

var notebooks = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "notebooks"}

func rule(groups, versions, resources []string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops,
		Rule: admissionregistrationv1.Rule{APIGroups: groups, APIVersions: versions, Resources: resources}}
}

func object(labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kubeflow.org/v1", "kind": "Notebook"}}
	u.SetNamespace("team")
	u.SetName("nb")
	u.SetLabels(labels)
	return u
}

func TestWebhookRulesMatch(t *testing.T) {
	create := admissionregistrationv1.Create
	kf := []string{"kubeflow.org"}
	cases := []struct {
		name       string
		hook       gateWebhook
		namespaced bool
		want       bool
	}{
		{"exact rule", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"v1"}, []string{"notebooks"}, create)}}, true, true},
		{"other group", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule([]string{"apps"}, []string{"*"}, []string{"*"}, create)}}, true, false},
		{"only delete", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, admissionregistrationv1.Delete)}}, true, false},
		{"update only", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, admissionregistrationv1.Update)}}, true, true},
		{"subresource only", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"notebooks/status"}, create)}}, true, false},
		{"all with subresources", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule([]string{"*"}, []string{"*"}, []string{"*/*"}, admissionregistrationv1.OperationAll)}}, true, true},
		{"other version, exact policy", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"v1beta1"}, []string{"notebooks"}, create)}}, true, false},
		{"other version, equivalent", gateWebhook{equivalent: true, rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"v1beta1"}, []string{"notebooks"}, create)}}, true, true},
		{"cluster scope only", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{func() admissionregistrationv1.RuleWithOperations {
			r := rule(kf, []string{"*"}, []string{"*"}, create)
			r.Scope = ptr.To(admissionregistrationv1.ClusterScope)
			return r
		}()}}, true, false},
		{"namespace selector matches", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, create)},
			namespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/part-of": "kubeflow-profile"}}}, true, true},
		{"namespace selector does not match", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, create)},
			namespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}}, true, false},
		{"object selector does not match", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, create)},
			objectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "skip", Operator: metav1.LabelSelectorOpDoesNotExist}}}}, true, false},
		{"namespace selector ignored for cluster-scoped", gateWebhook{rules: []admissionregistrationv1.RuleWithOperations{rule(kf, []string{"*"}, []string{"*"}, create)},
			namespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}}, false, true},
	}
	nsLabels := labels.Set{"kubernetes.io/metadata.name": "team", "app.kubernetes.io/part-of": "kubeflow-profile"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.hook.admits(object(map[string]string{"skip": "yes"}), notebooks, tc.namespaced, nsLabels); got != tc.want {
				t.Errorf("admits = %v, want %v", got, tc.want)
			}
		})
	}
}

// gateFixture is a cluster with a Fail webhook for notebooks behind Service kubeflow/nb-webhook,
// whose EndpointSlice is not ready.
func gateFixture(t *testing.T, policy admissionregistrationv1.FailurePolicyType) (*kube.Client, *fake.Clientset) {
	t.Helper()
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "notebooks"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:          "validate.notebooks.kubeflow.org",
			ClientConfig:  admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "kubeflow", Name: "nb-webhook"}},
			Rules:         []admissionregistrationv1.RuleWithOperations{rule([]string{"kubeflow.org"}, []string{"v1"}, []string{"notebooks"}, admissionregistrationv1.Create)},
			FailurePolicy: &policy,
		}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "kubeflow", Name: "nb-webhook-1", Labels: map[string]string{discoveryv1.LabelServiceName: "nb-webhook"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}},
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}
	cs := fake.NewClientset(hook, slice, ns)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{apiServiceResource: "APIServiceList"})
	return &kube.Client{Typed: cs, Dynamic: dyn}, cs
}

func notebookLevel() []Target {
	return []Target{{Object: object(nil), ID: manifest.ID{Group: "kubeflow.org", Kind: "Notebook", Namespace: "team", Name: "nb"},
		Mapping: &meta.RESTMapping{Resource: notebooks, Scope: meta.RESTScopeNamespace}}}
}

// noProgress drops a wait's progress.
type noProgress struct{}

func (noProgress) Waiting(string, int, int, []string) {}

// recorder keeps the progress lines of a wait.
type recorder struct {
	pending atomic.Value
}

func (r *recorder) Waiting(what string, done, total int, pending []string) {
	r.pending.Store(what + ": " + strings.Join(pending, ", "))
}

// TestGateWaitsForWebhookBackend: the custom resources of a level wait until the webhook that
// admits them has a ready endpoint.
func TestGateWaitsForWebhookBackend(t *testing.T) {
	c, cs := gateFixture(t, admissionregistrationv1.Fail)
	var polls atomic.Int32
	cs.PrependReactor("list", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The backend becomes ready at the third look.
		if polls.Add(1) == 3 {
			s, _ := cs.Tracker().Get(discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), "kubeflow", "nb-webhook-1")
			slice := s.(*discoveryv1.EndpointSlice).DeepCopy()
			slice.Endpoints[0].Conditions.Ready = ptr.To(true)
			if err := cs.Tracker().Update(discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), slice, "kubeflow"); err != nil {
				t.Error(err)
			}
		}
		return false, nil, nil
	})
	rep := &recorder{}
	ctx, cancel := WithRunTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := WaitGates(ctx, c, notebookLevel(), time.Minute, rep); err != nil {
		t.Fatal(err)
	}
	if polls.Load() < 3 {
		t.Errorf("the gate opened after %d looks, before the backend was ready", polls.Load())
	}
}

// TestGateDeadlineNamesWebhook: at the run's deadline the error names the webhook, its Service
// and the objects it holds back.
func TestGateDeadlineNamesWebhook(t *testing.T) {
	c, _ := gateFixture(t, admissionregistrationv1.Fail)
	const timeout = 1500 * time.Millisecond
	ctx, cancel := WithRunTimeout(context.Background(), timeout)
	defer cancel()
	rep := &recorder{}
	err := WaitGates(ctx, c, notebookLevel(), timeout, rep)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(),
		"webhook validate.notebooks.kubeflow.org (Service kubeflow/nb-webhook): no ready endpoints; it admits team/Notebook.kubeflow.org/nb") {
		t.Fatalf("got %v, want the deadline error naming the webhook, its Service and the notebook", err)
	}
	if got, _ := rep.pending.Load().(string); got != "admission: webhook validate.notebooks.kubeflow.org (Service kubeflow/nb-webhook)" {
		t.Errorf("progress line %q", got)
	}
}

// TestGateIgnoresIgnoreWebhooks: a webhook with failurePolicy Ignore does not hold anything back.
func TestGateIgnoresIgnoreWebhooks(t *testing.T) {
	c, _ := gateFixture(t, admissionregistrationv1.Ignore)
	ctx, cancel := WithRunTimeout(context.Background(), time.Minute)
	defer cancel()
	gates, err := client{c}.levelGates(ctx, notebookLevel())
	if err != nil || len(gates) != 0 {
		t.Fatalf("gates %v, %v; want none", gates, err)
	}
}

// TestGateAPIServiceAvailable: objects of an aggregated API wait for its APIService.
func TestGateAPIServiceAvailable(t *testing.T) {
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1.kubeflow.org"},
		"spec":     map[string]any{"group": "kubeflow.org", "version": "v1", "service": map[string]any{"namespace": "kubeflow", "name": "api"}},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Available", "status": "False", "reason": "MissingEndpoints", "message": "endpoints for service/api in \"kubeflow\" have no addresses"}}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{apiServiceResource: "APIServiceList"}, api)
	c := &kube.Client{Typed: fake.NewClientset(), Dynamic: dyn}
	const timeout = 1500 * time.Millisecond
	ctx, cancel := WithRunTimeout(context.Background(), timeout)
	defer cancel()
	err := WaitGates(ctx, c, notebookLevel(), timeout, noProgress{})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "APIService v1.kubeflow.org: Available False: MissingEndpoints") {
		t.Fatalf("got %v, want the deadline error naming the APIService and its condition", err)
	}
}
