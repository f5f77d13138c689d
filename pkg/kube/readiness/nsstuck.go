package readiness

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// The conditions the namespace controller sets on a namespace it cannot finish deleting.
var namespaceDeletionConditions = []corev1.NamespaceConditionType{
	corev1.NamespaceDeletionDiscoveryFailure,
	corev1.NamespaceDeletionGVParsingFailure,
	corev1.NamespaceDeletionContentFailure,
	corev1.NamespaceContentRemaining,
	corev1.NamespaceFinalizersRemaining,
}

// explainBudget bounds the extra reads that explain a stuck namespace: they run after the
// delete's own timeout, so they must not add much to it.
const explainBudget = 30 * time.Second

// leftObject is an object still in a namespace being deleted.
type leftObject struct {
	name       string
	finalizers []string
}

// leftKind is what is left of one resource in a namespace.
type leftKind struct {
	gvr     schema.GroupVersionResource
	kind    string
	objects []leftObject
}

// apiServiceState is an APIService that is not Available.
type apiServiceState struct {
	name, reason, message string
}

// stuckNamespace is what explains one namespace that stays Terminating.
type stuckNamespace struct {
	ns          *corev1.Namespace
	left        []leftKind
	failed      map[schema.GroupVersion]error // groups discovery could not read
	unavailable []apiServiceState
	errs        []error // reads that failed while explaining
}

// ExplainNamespaces reads why namespaces stay Terminating and describes it: what is left in each
// by kind with their finalizers, the namespace's deletion conditions, the likely cause and the
// remedy. It only reads; finalizers are never removed here.
func ExplainNamespaces(ctx context.Context, c *kube.Client, names []string) string {
	ctx, cancel := context.WithTimeout(ctx, explainBudget)
	defer cancel()
	// Listing every kind lists deprecated ones too (v1 Endpoints): their warnings are noise here.
	quiet := *c
	if c.Config != nil {
		cfg := rest.CopyConfig(c.Config)
		cfg.WarningHandler = rest.NoWarnings{}
		if md, err := metadata.NewForConfig(cfg); err == nil {
			quiet.Metadata = md
		}
	}
	var parts []string
	for _, name := range names {
		if text := (client{&quiet}).explainNamespace(ctx, name).describe(); text != "" {
			parts = append(parts, text)
		}
	}
	return strings.Join(parts, "\n")
}

func (c client) explainNamespace(ctx context.Context, name string) *stuckNamespace {
	st := &stuckNamespace{}
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return st // gone after all
	}
	if err != nil {
		st.ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		st.errs = append(st.errs, fmt.Errorf("read namespace %s: %w", name, err))
		return st
	}
	st.ns = ns
	// Fresh discovery: the kinds that hold a namespace are often CRDs installed after the
	// cache was filled.
	c.Discovery.Invalidate()
	lists, err := c.Discovery.ServerPreferredNamespacedResources()
	var groupErr *discovery.ErrGroupDiscoveryFailed
	switch {
	case errors.As(err, &groupErr):
		st.failed = groupErr.Groups
	case err != nil:
		st.errs = append(st.errs, fmt.Errorf("discover namespaced resources: %w", err))
	}
	st.left, st.errs = c.listLeft(ctx, name, lists, st.errs)
	if len(st.failed) > 0 || hasCondition(ns, corev1.NamespaceDeletionDiscoveryFailure) {
		unavailable, err := c.unavailableAPIServices(ctx)
		if err != nil {
			st.errs = append(st.errs, err)
		}
		st.unavailable = unavailable
	}
	return st
}

// listLeft lists, with one paginated metadata list per listable resource, what is left in ns.
func (c client) listLeft(ctx context.Context, ns string, lists []*metav1.APIResourceList, errs []error) ([]leftKind, []error) {
	var mu sync.Mutex
	var left []leftKind
	g := errgroup.Group{}
	g.SetLimit(8)
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil || gv.Group == "events.k8s.io" { // the same Events as the core group's
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerb(r.Verbs, "list") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			kind := kube.KindString(schema.GroupKind{Group: gv.Group, Kind: r.Kind})
			g.Go(func() error {
				var objs []leftObject
				err := c.EachMetadata(ctx, gvr, ns, "", func(m *metav1.PartialObjectMetadata) {
					objs = append(objs, leftObject{name: m.Name, finalizers: m.Finalizers})
				})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("list %s: %w", kind, err))
				} else if len(objs) > 0 {
					left = append(left, leftKind{gvr: gvr, kind: kind, objects: objs})
				}
				return nil
			})
		}
	}
	_ = g.Wait()
	sort.Slice(left, func(i, j int) bool { return left[i].kind < left[j].kind })
	return left, errs
}

// unavailableAPIServices lists the APIServices whose Available condition is not True: the
// namespace controller cannot list (so cannot empty) the resources they serve.
func (c client) unavailableAPIServices(ctx context.Context) ([]apiServiceState, error) {
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	list, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list APIServices: %w", err)
	}
	var out []apiServiceState
	for _, item := range list.Items {
		conds, _, _ := unstructured.NestedSlice(item.Object, "status", "conditions")
		available := false
		st := apiServiceState{name: item.GetName(), reason: "no Available condition"}
		for _, raw := range conds {
			cond, _ := raw.(map[string]any)
			if cond["type"] != "Available" {
				continue
			}
			available = cond["status"] == "True"
			st.reason, _ = cond["reason"].(string)
			st.message, _ = cond["message"].(string)
		}
		if !available {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// maxNamesPerKind bounds the objects named per kind; the rest are counted.
const maxNamesPerKind = 5

// describe renders the explanation of one namespace, "" when it is gone.
func (st *stuckNamespace) describe() string {
	if st.ns == nil {
		return ""
	}
	name := st.ns.Name
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %s is still %s:", name, phaseOf(st.ns))
	line := func(format string, args ...any) { fmt.Fprintf(&b, "\n  "+format, args...) }
	for _, t := range namespaceDeletionConditions {
		for _, cond := range st.ns.Status.Conditions {
			if cond.Type == t && cond.Status == corev1.ConditionTrue {
				line("condition %s: %s", cond.Type, cond.Message)
			}
		}
	}
	if len(st.ns.Finalizers) > 0 {
		line("namespace finalizers: %s", strings.Join(st.ns.Finalizers, ", "))
	}
	// finalizer → the objects it holds, for the cause and the remedy
	held := map[string][]string{}
	var example map[string]string // finalizer → a kubectl patch that removes it from one object
	for _, k := range st.left {
		names := make([]string, 0, min(len(k.objects), maxNamesPerKind))
		for i, o := range k.objects {
			for _, f := range o.finalizers {
				held[f] = append(held[f], k.kind+"/"+o.name)
				if example == nil {
					example = map[string]string{}
				}
				if _, ok := example[f]; !ok {
					example[f] = fmt.Sprintf("kubectl patch %s %s -n %s --type=merge -p '{\"metadata\":{\"finalizers\":null}}'", resourceArg(k.gvr), o.name, name)
				}
			}
			if i < maxNamesPerKind {
				n := o.name
				if len(o.finalizers) > 0 {
					n += " (finalizers: " + strings.Join(o.finalizers, ", ") + ")"
				}
				names = append(names, n)
			}
		}
		more := ""
		if len(k.objects) > maxNamesPerKind {
			more = fmt.Sprintf(" and %d more", len(k.objects)-maxNamesPerKind)
		}
		line("left: %s (%d): %s%s", k.kind, len(k.objects), strings.Join(names, ", "), more)
	}
	failed := make([]string, 0, len(st.failed))
	for gv, err := range st.failed {
		failed = append(failed, fmt.Sprintf("%s (%v)", gv, err))
	}
	sort.Strings(failed)
	for _, a := range st.unavailable {
		line("likely cause: APIService %s is not Available (%s: %s), so the namespace controller cannot list and delete what it serves", a.name, a.reason, a.message)
		line("remedy: bring back the service behind %s, or if that API is gone for good: kubectl delete apiservice %s", a.name, a.name)
	}
	if len(st.unavailable) == 0 && len(failed) > 0 {
		line("likely cause: discovery fails for %s, so the namespace controller cannot list and delete what it serves", strings.Join(failed, ", "))
		line("remedy: fix the APIService of that group (kubectl get apiservices), or delete it if the API is gone")
	}
	if hasCondition(st.ns, corev1.NamespaceDeletionGVParsingFailure) {
		line("likely cause: an API group/version the namespace controller cannot parse; remedy: fix or delete the APIService that registers it")
	}
	if hasCondition(st.ns, corev1.NamespaceDeletionContentFailure) {
		line("likely cause: deleting content failed (the condition above says which), often an admission webhook whose service is gone; remedy: kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations and fix or delete the one that fails")
	}
	finalizers := make([]string, 0, len(held))
	for f := range held {
		finalizers = append(finalizers, f)
	}
	sort.Strings(finalizers)
	for _, f := range finalizers {
		objs := held[f]
		noun := "objects"
		if len(objs) == 1 {
			noun = "object"
		}
		line("likely cause: finalizer %s on %d %s (%s) is removed by its controller, and no running controller removes it: the controller is gone, was never installed, or cannot reach the API",
			f, len(objs), noun, strings.Join(objs[:min(len(objs), maxNamesPerKind)], ", "))
		line("remedy: start that controller again; only if it is gone for good, remove the finalizer yourself (what it guards is then skipped), e.g. %s", example[f])
	}
	for _, err := range st.errs {
		line("could not check: %v", err)
	}
	return b.String()
}

// resourceArg is how kubectl names a resource unambiguously: resource.group.
func resourceArg(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}

func phaseOf(ns *corev1.Namespace) string {
	if ns.Status.Phase == "" {
		return "there"
	}
	return string(ns.Status.Phase)
}

func hasCondition(ns *corev1.Namespace, t corev1.NamespaceConditionType) bool {
	for _, c := range ns.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func hasVerb(verbs metav1.Verbs, verb string) bool {
	for _, v := range verbs {
		if v == verb {
			return true
		}
	}
	return false
}
