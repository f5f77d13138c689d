package readiness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// A readiness gate holds a level back until what admits or serves its objects can answer:
// an admission webhook that the API server would call for them needs a ready backend
// ("failed calling webhook ... connection refused" otherwise), and a kind served by an
// aggregated API needs its APIService Available.
type gate struct {
	kind    string               // "webhook" or "APIService"
	name    string               // the webhook's name, or the APIService's
	service types.NamespacedName // a webhook's backend
	holds   []string             // the objects it holds back
}

func (g *gate) String() string {
	if g.kind == "webhook" {
		return fmt.Sprintf("webhook %s (Service %s)", g.name, g.service)
	}
	return "APIService " + g.name
}

// gateWebhook is one webhook of a Validating- or MutatingWebhookConfiguration, reduced to
// what decides whether the API server calls it for an object.
type gateWebhook struct {
	name              string
	service           types.NamespacedName
	rules             []admissionregistrationv1.RuleWithOperations
	equivalent        bool // matchPolicy Equivalent: any version of a matching group and resource
	namespaceSelector *metav1.LabelSelector
	objectSelector    *metav1.LabelSelector
}

var apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// WaitGates waits, before a level is sent, until every webhook that would admit one of its
// objects has a ready endpoint behind its Service, and every APIService that serves one of
// them is Available, under the run's deadline. Webhooks and APIServices are read live: those of
// the app were applied in an earlier level (webhooks come after the workloads that serve them).
// Gates that kfdeploy may not read (Forbidden) are left to the API server's own admission.
// timeout is the run's deadline's length, for the message.
func WaitGates(ctx context.Context, kc *kube.Client, level []Target, timeout time.Duration, rep Progress) error {
	if len(level) == 0 {
		return nil
	}
	c := client{kc}
	gates, err := c.levelGates(ctx, level)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("apply interrupted: %w", context.Cause(ctx))
	}
	if err != nil || len(gates) == 0 {
		return err
	}
	why := map[*gate]string{}
	open := map[*gate]bool{}
	err = wait.PollUntilContextCancel(ctx, PollInterval, true, func(context.Context) (bool, error) {
		var waiting []string
		for _, g := range gates {
			if open[g] {
				continue
			}
			ready, reason, err := c.gateReady(ctx, g)
			if err != nil {
				return false, err
			}
			open[g], why[g] = ready, reason
			if !ready {
				waiting = append(waiting, g.String())
			}
		}
		rep.Waiting("admission", len(gates)-len(waiting), len(gates), waiting)
		return len(waiting) == 0, nil
	})
	return Ended(ctx, err, func() error {
		var lines []string
		for _, g := range gates {
			if open[g] {
				continue
			}
			line := g.String() + ": " + why[g] + "; it admits " + g.holds[0]
			if len(g.holds) > 1 {
				line += fmt.Sprintf(" and %d more", len(g.holds)-1)
			}
			lines = append(lines, line)
		}
		return fmt.Errorf("%w after %s: objects wait for %d webhooks or APIServices that are not ready:\n  %s", ErrNotReady, timeout, len(lines), strings.Join(lines, "\n  "))
	})
}

// levelGates finds the gates of a level's objects.
func (c client) levelGates(ctx context.Context, level []Target) ([]*gate, error) {
	hooks, err := c.liveWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	served, err := c.servedGroupVersions(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*gate{}
	nsLabels := map[string]labels.Set{}
	for _, p := range level {
		if p.Mapping == nil {
			continue
		}
		gvr := p.Mapping.Resource
		if name, ok := served[gvr.GroupVersion()]; ok {
			addGate(byKey, &gate{kind: "APIService", name: name}, p.ID.String())
		}
		if len(hooks) == 0 {
			continue
		}
		var nsSet labels.Set
		if ns := p.Object.GetNamespace(); ns != "" && kube.IsNamespaced(p.Mapping) {
			if nsSet, err = c.namespaceLabels(ctx, ns, nsLabels); err != nil {
				return nil, err
			}
		}
		for _, h := range hooks {
			if h.admits(p.Object, gvr, kube.IsNamespaced(p.Mapping), nsSet) {
				addGate(byKey, &gate{kind: "webhook", name: h.name, service: h.service}, p.ID.String())
			}
		}
	}
	gates := make([]*gate, 0, len(byKey))
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		gates = append(gates, byKey[k])
	}
	return gates, nil
}

func addGate(byKey map[string]*gate, g *gate, id string) {
	key := g.String()
	if byKey[key] == nil {
		byKey[key] = g
	}
	byKey[key].holds = append(byKey[key].holds, id)
}

// liveWebhooks lists the webhooks that call a Service and whose failure rejects the request
// (failurePolicy Fail, the default): with Ignore, the API server admits the object anyway.
func (c client) liveWebhooks(ctx context.Context) ([]gateWebhook, error) {
	reg := c.Typed.AdmissionregistrationV1()
	var hooks []gateWebhook
	add := func(name string, cc admissionregistrationv1.WebhookClientConfig, fp *admissionregistrationv1.FailurePolicyType, mp *admissionregistrationv1.MatchPolicyType,
		rules []admissionregistrationv1.RuleWithOperations, nsSel, objSel *metav1.LabelSelector) {
		if cc.Service == nil || (fp != nil && *fp == admissionregistrationv1.Ignore) {
			return
		}
		hooks = append(hooks, gateWebhook{name: name, service: types.NamespacedName{Namespace: cc.Service.Namespace, Name: cc.Service.Name},
			rules: rules, equivalent: mp == nil || *mp == admissionregistrationv1.Equivalent, namespaceSelector: nsSel, objectSelector: objSel})
	}
	validating, err := reg.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list ValidatingWebhookConfigurations: %w", err)
	}
	if err == nil {
		for _, cfg := range validating.Items {
			for _, w := range cfg.Webhooks {
				add(w.Name, w.ClientConfig, w.FailurePolicy, w.MatchPolicy, w.Rules, w.NamespaceSelector, w.ObjectSelector)
			}
		}
	}
	mutating, err := reg.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list MutatingWebhookConfigurations: %w", err)
	}
	if err == nil {
		for _, cfg := range mutating.Items {
			for _, w := range cfg.Webhooks {
				add(w.Name, w.ClientConfig, w.FailurePolicy, w.MatchPolicy, w.Rules, w.NamespaceSelector, w.ObjectSelector)
			}
		}
	}
	return hooks, nil
}

// servedGroupVersions maps each group/version served by an aggregated API (an APIService with
// a Service, not one the API server serves itself) to its APIService.
func (c client) servedGroupVersions(ctx context.Context) (map[schema.GroupVersion]string, error) {
	list, err := c.Dynamic.Resource(apiServiceResource).List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list APIServices: %w", err)
	}
	served := map[schema.GroupVersion]string{}
	for _, item := range list.Items {
		if svc, _, _ := unstructured.NestedMap(item.Object, "spec", "service"); svc == nil {
			continue
		}
		group, _, _ := unstructured.NestedString(item.Object, "spec", "group")
		version, _, _ := unstructured.NestedString(item.Object, "spec", "version")
		served[schema.GroupVersion{Group: group, Version: version}] = item.GetName()
	}
	return served, nil
}

func (c client) namespaceLabels(ctx context.Context, ns string, cache map[string]labels.Set) (labels.Set, error) {
	if set, ok := cache[ns]; ok {
		return set, nil
	}
	set := labels.Set{"kubernetes.io/metadata.name": ns}
	live, err := c.Typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		for k, v := range live.Labels {
			set[k] = v
		}
	case !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err):
		return nil, fmt.Errorf("read the labels of namespace %s for its webhooks: %w", ns, err)
	}
	cache[ns] = set
	return set, nil
}

// admits reports whether the API server would call the webhook when obj is created or updated:
// a rule matches its group, version, resource, scope and operation, and the namespace and
// object selectors match. matchConditions are not evaluated: a webhook that might be called is
// waited for.
func (h gateWebhook) admits(obj *unstructured.Unstructured, gvr schema.GroupVersionResource, namespaced bool, nsLabels labels.Set) bool {
	if !slices.ContainsFunc(h.rules, func(r admissionregistrationv1.RuleWithOperations) bool { return h.ruleMatches(r, gvr, namespaced) }) {
		return false
	}
	switch {
	case namespaced:
		if !selectorMatches(h.namespaceSelector, nsLabels) {
			return false
		}
	case gvr.Group == "" && gvr.Resource == "namespaces":
		// A Namespace is matched by namespaceSelector on its own labels.
		if !selectorMatches(h.namespaceSelector, labels.Set(obj.GetLabels())) {
			return false
		}
	}
	return selectorMatches(h.objectSelector, labels.Set(obj.GetLabels()))
}

func (h gateWebhook) ruleMatches(r admissionregistrationv1.RuleWithOperations, gvr schema.GroupVersionResource, namespaced bool) bool {
	if !slices.ContainsFunc(r.Operations, func(op admissionregistrationv1.OperationType) bool {
		return op == admissionregistrationv1.OperationAll || op == admissionregistrationv1.Create || op == admissionregistrationv1.Update
	}) {
		return false
	}
	if !matchesOrStar(r.APIGroups, gvr.Group) {
		return false
	}
	if !h.equivalent && !matchesOrStar(r.APIVersions, gvr.Version) {
		return false
	}
	// "*" and "*/*" include the main resource; "name/*" and "name/sub" only subresources.
	if !slices.ContainsFunc(r.Resources, func(res string) bool { return res == "*" || res == "*/*" || res == gvr.Resource }) {
		return false
	}
	if r.Scope != nil {
		switch *r.Scope {
		case admissionregistrationv1.ClusterScope:
			return !namespaced
		case admissionregistrationv1.NamespacedScope:
			return namespaced
		}
	}
	return true
}

func matchesOrStar(list []string, v string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return s == "*" || s == v })
}

// selectorMatches: an absent selector matches everything; an invalid one is treated as
// matching, so that the webhook is waited for rather than skipped.
func selectorMatches(sel *metav1.LabelSelector, set labels.Set) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return true
	}
	return s.Matches(set)
}

// gateReady checks one gate once: a webhook's Service has an endpoint that is ready (an
// EndpointSlice endpoint whose ready condition is true or unset), an APIService is Available.
func (c client) gateReady(ctx context.Context, g *gate) (bool, string, error) {
	if g.kind == "APIService" {
		u, err := c.Dynamic.Resource(apiServiceResource).Get(ctx, g.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		if err != nil {
			return false, "", fmt.Errorf("wait for APIService %s to be Available: %w", g.name, err)
		}
		return apiServiceAvailable(u)
	}
	list, err := c.Typed.DiscoveryV1().EndpointSlices(g.service.Namespace).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + g.service.Name})
	if err != nil {
		return false, "", fmt.Errorf("wait for the endpoints of Service %s behind webhook %s: %w", g.service, g.name, err)
	}
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				return true, "", nil
			}
		}
	}
	return false, "no ready endpoints", nil
}

func apiServiceAvailable(u *unstructured.Unstructured) (bool, string, error) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, raw := range conds {
		cond, _ := raw.(map[string]any)
		if cond["type"] != "Available" {
			continue
		}
		if cond["status"] == "True" {
			return true, "", nil
		}
		reason, _ := cond["reason"].(string)
		msg, _ := cond["message"].(string)
		return false, fmt.Sprintf("Available %v: %s: %s", cond["status"], reason, msg), nil
	}
	return false, "no Available condition yet", nil
}
