package preflight

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// apisCheck: every apiVersion/kind of the manifests is served by the server, or by a CRD of the
// app itself once it is applied. It reads discovery (cached for the run), never the objects.
type apisCheck struct{ e *env }

func (c *apisCheck) Name() string { return "apis" }

func (c *apisCheck) Run(context.Context) []Finding {
	disc := c.e.client.Discovery
	if disc == nil {
		return []Finding{{Status: Warn, Finding: "no discovery client: the API versions of the manifests were not checked", Remedy: "run preflight against a cluster"}}
	}
	served, failed, err := servedKinds(disc)
	if err == nil && len(missingKinds(c.e.opts.Objects, served, failed)) > 0 {
		// A cache written before another app (or tool) installed its CRDs would name them
		// missing. The run's mapper may have read that cache already: it reads anew too, or
		// the apply after this check would find the kinds missing that it found served.
		disc.Invalidate()
		if c.e.client.Mapper != nil {
			c.e.client.Mapper.Reset()
		}
		served, failed, err = servedKinds(disc)
	}
	if err != nil {
		return []Finding{{Status: Warn, Finding: fmt.Sprintf("cannot read the API server's discovery: %v", err),
			Remedy: "run preflight again; if it persists, check the API server's aggregated APIs (kubectl get apiservices)"}}
	}
	return evaluateAPIs(c.e.opts.Objects, c.e.opts.Files, served, failed)
}

// kindKey is one apiVersion/kind.
type kindKey struct{ gv, kind string }

// servedKinds reads every group/version/kind the server serves. Groups whose discovery failed
// (an aggregated API that is down) are returned apart: their kinds are unknown, not missing.
func servedKinds(disc discovery.DiscoveryInterface) (map[kindKey]bool, map[string]error, error) {
	_, lists, err := disc.ServerGroupsAndResources()
	failed := map[string]error{}
	if err != nil {
		var gdf *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &gdf) {
			return nil, nil, err
		}
		for gv, e := range gdf.Groups {
			failed[gv.String()] = e
		}
	}
	served := map[kindKey]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			if !strings.Contains(r.Name, "/") { // subresources share their parent's kind
				served[kindKey{l.GroupVersion, r.Kind}] = true
			}
		}
	}
	return served, failed, nil
}

// missingKinds returns the objects' kinds that are neither served nor in a failed group.
func missingKinds(objs []*unstructured.Unstructured, served map[kindKey]bool, failed map[string]error) []kindKey {
	var out []kindKey
	seen := map[kindKey]bool{}
	for _, o := range objs {
		k := kindKey{o.GetAPIVersion(), o.GetKind()}
		if seen[k] || served[k] || failed[k.gv] != nil {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// removedAPI is an API version that Kubernetes stopped serving, and what to use instead.
type removedAPI struct {
	removedIn string // Kubernetes version that stopped serving it
	use       string // apiVersion to use; "" when there is no successor
	note      string // what else changes, or what replaces it
}

// removals are the API versions removed from Kubernetes (the deprecated API migration guide),
// keyed by apiVersion and kind; kind "*" covers every kind of that apiVersion not listed apart.
var removals = map[kindKey]removedAPI{
	{"extensions/v1beta1", "Ingress"}:                            {"v1.22", "networking.k8s.io/v1", "spec.backend becomes spec.defaultBackend, serviceName/servicePort become service.name/service.port, pathType is required"},
	{"extensions/v1beta1", "NetworkPolicy"}:                      {"v1.16", "networking.k8s.io/v1", ""},
	{"extensions/v1beta1", "PodSecurityPolicy"}:                  {"v1.25", "", "PodSecurityPolicy is gone: use Pod Security Admission (namespace labels pod-security.kubernetes.io/*)"},
	{"extensions/v1beta1", "*"}:                                  {"v1.16", "apps/v1", "spec.selector is required and immutable"},
	{"apps/v1beta1", "*"}:                                        {"v1.16", "apps/v1", "spec.selector is required and immutable"},
	{"apps/v1beta2", "*"}:                                        {"v1.16", "apps/v1", "spec.selector is required and immutable"},
	{"policy/v1beta1", "PodDisruptionBudget"}:                    {"v1.25", "policy/v1", "an empty spec.selector now selects every pod in the namespace"},
	{"policy/v1beta1", "PodSecurityPolicy"}:                      {"v1.25", "", "PodSecurityPolicy is gone: use Pod Security Admission (namespace labels pod-security.kubernetes.io/*)"},
	{"batch/v1beta1", "CronJob"}:                                 {"v1.25", "batch/v1", ""},
	{"autoscaling/v2beta1", "HorizontalPodAutoscaler"}:           {"v1.25", "autoscaling/v2", "metric targets move under target (type, averageUtilization, averageValue, value)"},
	{"autoscaling/v2beta2", "HorizontalPodAutoscaler"}:           {"v1.26", "autoscaling/v2", ""},
	{"networking.k8s.io/v1beta1", "Ingress"}:                     {"v1.22", "networking.k8s.io/v1", "spec.backend becomes spec.defaultBackend, serviceName/servicePort become service.name/service.port, pathType is required"},
	{"networking.k8s.io/v1beta1", "IngressClass"}:                {"v1.22", "networking.k8s.io/v1", ""},
	{"apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"}: {"v1.22", "apiextensions.k8s.io/v1", "spec.versions[*].schema.openAPIV3Schema is required and must be structural; spec.validation and spec.version are gone"},
	{"apiregistration.k8s.io/v1beta1", "APIService"}:             {"v1.22", "apiregistration.k8s.io/v1", ""},
	{"rbac.authorization.k8s.io/v1beta1", "*"}:                   {"v1.22", "rbac.authorization.k8s.io/v1", ""},
	{"rbac.authorization.k8s.io/v1alpha1", "*"}:                  {"v1.22", "rbac.authorization.k8s.io/v1", ""},
	{"admissionregistration.k8s.io/v1beta1", "*"}:                {"v1.22", "admissionregistration.k8s.io/v1", "webhooks[*].admissionReviewVersions and sideEffects are required"},
	{"storage.k8s.io/v1beta1", "CSIStorageCapacity"}:             {"v1.27", "storage.k8s.io/v1", ""},
	{"storage.k8s.io/v1beta1", "*"}:                              {"v1.22", "storage.k8s.io/v1", ""},
	{"scheduling.k8s.io/v1beta1", "PriorityClass"}:               {"v1.22", "scheduling.k8s.io/v1", ""},
	{"scheduling.k8s.io/v1alpha1", "PriorityClass"}:              {"v1.17", "scheduling.k8s.io/v1", ""},
	{"coordination.k8s.io/v1beta1", "Lease"}:                     {"v1.22", "coordination.k8s.io/v1", ""},
	{"certificates.k8s.io/v1beta1", "CertificateSigningRequest"}: {"v1.22", "certificates.k8s.io/v1", "spec.signerName is required"},
	{"discovery.k8s.io/v1beta1", "EndpointSlice"}:                {"v1.25", "discovery.k8s.io/v1", "topology becomes zone and deprecatedTopology"},
	{"events.k8s.io/v1beta1", "Event"}:                           {"v1.25", "events.k8s.io/v1", ""},
	{"node.k8s.io/v1beta1", "RuntimeClass"}:                      {"v1.25", "node.k8s.io/v1", ""},
	{"flowcontrol.apiserver.k8s.io/v1beta1", "*"}:                {"v1.26", "flowcontrol.apiserver.k8s.io/v1", ""},
	{"flowcontrol.apiserver.k8s.io/v1beta2", "*"}:                {"v1.29", "flowcontrol.apiserver.k8s.io/v1", ""},
	{"flowcontrol.apiserver.k8s.io/v1beta3", "*"}:                {"v1.32", "flowcontrol.apiserver.k8s.io/v1", ""},
	{"authentication.k8s.io/v1beta1", "*"}:                       {"v1.22", "authentication.k8s.io/v1", ""},
	{"authorization.k8s.io/v1beta1", "*"}:                        {"v1.22", "authorization.k8s.io/v1", ""},
	{"networking.k8s.io/v1beta1", "*"}:                           {"v1.22", "networking.k8s.io/v1", ""},
}

// removalOf looks an apiVersion/kind up in removals.
func removalOf(k kindKey) (removedAPI, bool) {
	if r, ok := removals[k]; ok {
		return r, true
	}
	r, ok := removals[kindKey{k.gv, "*"}]
	return r, ok
}

// crdVersions are the versions each CRD of the app serves, by group and kind.
func crdVersions(objs []*unstructured.Unstructured) map[schema.GroupKind]map[string]bool {
	out := map[schema.GroupKind]map[string]bool{}
	for _, o := range objs {
		if !manifest.IDOf(o).IsCRD() {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		gk := schema.GroupKind{Group: group, Kind: kind}
		if out[gk] == nil {
			out[gk] = map[string]bool{}
		}
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			name, _, _ := unstructured.NestedString(m, "name")
			served, _, _ := unstructured.NestedBool(m, "served")
			if name != "" {
				out[gk][name] = served
			}
		}
	}
	return out
}

// apiUse is the objects of one file using one apiVersion/kind that is not served.
type apiUse struct {
	file  string
	key   kindKey
	names []string
}

// evaluateAPIs is the check apart from the server: objects against what is served.
func evaluateAPIs(objs []*unstructured.Unstructured, files map[manifest.ID]string, served map[kindKey]bool, failed map[string]error) []Finding {
	crds := crdVersions(objs)
	uses := map[string]*apiUse{}
	var order []string
	kinds := map[kindKey]bool{}
	byCRD, unknown := 0, map[string]bool{}
	for _, o := range objs {
		k := kindKey{o.GetAPIVersion(), o.GetKind()}
		kinds[k] = true
		if served[k] {
			continue
		}
		gv, err := schema.ParseGroupVersion(k.gv)
		if err != nil {
			continue // manifest.Validate has rejected it already
		}
		if versions, ok := crds[schema.GroupKind{Group: gv.Group, Kind: k.kind}]; ok && versions[gv.Version] {
			byCRD++
			continue
		}
		if failed[k.gv] != nil {
			unknown[k.gv] = true
			continue
		}
		file := files[manifest.IDOf(o)]
		if file == "" {
			file = "manifests"
		}
		key := file + "\x00" + k.gv + "\x00" + k.kind
		u := uses[key]
		if u == nil {
			u = &apiUse{file: file, key: k}
			uses[key] = u
			order = append(order, key)
		}
		u.names = append(u.names, qualifiedName(o))
	}

	findings := evaluateWatches(objs, files, served, failed)
	installs := installRemedies(objs)
	sort.Strings(order)
	for _, key := range order {
		f := unservedFinding(uses[key], crds, served)
		if install, ok := installs[uses[key].key]; ok {
			// A kind a program of the app watches: its CustomResourceDefinitions are missing.
			f.Remedy = install + ", then run 'kfdeploy apply' again"
		}
		findings = append(findings, f)
	}
	gvs := make([]string, 0, len(unknown))
	for gv := range unknown {
		gvs = append(gvs, gv)
	}
	sort.Strings(gvs)
	for _, gv := range gvs {
		findings = append(findings, Finding{Status: Warn,
			Finding: fmt.Sprintf("the API server could not list the kinds of %s: %v; the manifests' objects of %s were not checked", gv, failed[gv], gv),
			Remedy:  "check the APIService of that group (kubectl get apiservice " + apiServiceName(gv) + ")"})
	}
	if len(findings) == 0 {
		f := fmt.Sprintf("all %d kinds of the manifests are served", len(kinds))
		if byCRD > 0 {
			f += fmt.Sprintf(" (%d objects by the app's own CustomResourceDefinitions, once applied)", byCRD)
		}
		findings = append(findings, Finding{Status: OK, Finding: f})
	}
	return findings
}

// unservedFinding says which objects use an apiVersion the server does not serve, and what to
// use instead: a known removal's successor, or the versions the server serves the kind in.
func unservedFinding(u *apiUse, crds map[schema.GroupKind]map[string]bool, served map[kindKey]bool) Finding {
	gv, _ := schema.ParseGroupVersion(u.key.gv)
	gk := schema.GroupKind{Group: gv.Group, Kind: u.key.kind}
	what := fmt.Sprintf("%s: %s %s %s", u.file, u.key.gv, u.key.kind, nameList(u.names))
	fixIn := fmt.Sprintf("change apiVersion in the component that renders %s, run 'kfdeploy generate', then apply", u.file)

	if versions, ok := crds[gk]; ok {
		var servedBy []string
		for v, s := range versions {
			if s {
				servedBy = append(servedBy, gv.Group+"/"+v)
			}
		}
		sort.Strings(servedBy)
		return Finding{Status: Fail,
			Finding: fmt.Sprintf("%s: the app's CustomResourceDefinition for %s does not serve version %s (it serves %s)", what, gk, gv.Version, orNone(servedBy)),
			Remedy:  "use a served version, or mark the version served in the CustomResourceDefinition; " + fixIn}
	}
	if r, ok := removalOf(u.key); ok {
		finding := fmt.Sprintf("%s: not served (removed in Kubernetes %s)", what, r.removedIn)
		if r.use == "" {
			return Finding{Status: Fail, Finding: finding + "; " + r.note, Remedy: "remove these objects from the component that renders " + u.file}
		}
		finding += "; use apiVersion " + r.use
		remedy := fmt.Sprintf("change apiVersion to %s", r.use)
		if r.note != "" {
			remedy += " (" + r.note + ")"
		}
		remedy += fmt.Sprintf(" in the component that renders %s, run 'kfdeploy generate', then apply", u.file)
		return Finding{Status: Fail, Finding: finding, Remedy: remedy}
	}
	// Other versions the server serves the kind in.
	var others []string
	for k := range served {
		if k.kind != u.key.kind {
			continue
		}
		if og, err := schema.ParseGroupVersion(k.gv); err == nil && og.Group == gv.Group {
			others = append(others, k.gv)
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		return Finding{Status: Fail,
			Finding: fmt.Sprintf("%s: not served; this server serves %s in %s", what, u.key.kind, strings.Join(others, ", ")),
			Remedy:  fmt.Sprintf("use apiVersion %s: %s", others[len(others)-1], fixIn)}
	}
	return Finding{Status: Fail,
		Finding: fmt.Sprintf("%s: not served by this server, and no CustomResourceDefinition of the app defines it", what),
		Remedy:  "add the component that installs its CustomResourceDefinition, install it on the cluster first, or fix apiVersion/kind; then run 'kfdeploy generate'"}
}

func qualifiedName(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return ns + "/" + o.GetName()
	}
	return o.GetName()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// apiServiceName is the APIService object of a group/version: "v1beta1.metrics.k8s.io".
func apiServiceName(gv string) string {
	g, err := schema.ParseGroupVersion(gv)
	if err != nil || g.Group == "" {
		return g.Version
	}
	return g.Version + "." + g.Group
}
