package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
)

// appVerbs are what apply (get, create and patch through server-side apply, list to find
// members and wait) and delete (delete, get to wait until gone) do with each kind.
var appVerbs = []string{"get", "list", "create", "patch", "delete"}

// reviewConcurrency bounds the SelfSubjectAccessReviews in flight: an app of a few dozen
// kinds needs a few hundred reviews, each a cheap request.
const reviewConcurrency = 16

// access is one thing to review: a verb on a resource in a namespace ("" = cluster-wide).
type access struct {
	verb      string
	group     string
	resource  string
	namespace string
}

// permissionsCheck reviews, with SelfSubjectAccessReviews, every permission that applying and
// deleting the app needs, and names exactly the missing ones.
type permissionsCheck struct{ e *env }

func (c *permissionsCheck) Name() string { return "permissions" }

func (c *permissionsCheck) Run(ctx context.Context) []Finding {
	var findings []Finding
	needed := map[access]bool{}
	add := func(group, resource, ns string, verbs ...string) {
		for _, v := range verbs {
			needed[access{verb: v, group: group, resource: resource, namespace: ns}] = true
		}
	}
	for _, t := range c.e.resolved() {
		if t.err != nil {
			continue // a kind the server does not serve: the apis check names it and its file
		}
		add(t.gvr.Group, t.gvr.Resource, t.id.Namespace, appVerbs...)
	}
	// The ApplySet inventory, a Secret in the app's namespace; the Lease that keeps two runs
	// from applying at once (in lock.Namespace); and the namespace itself.
	add("", "secrets", c.e.ns, "get", "create", "patch", "delete")
	add("coordination.k8s.io", "leases", lock.Namespace, "get", "create", "update", "delete")
	add("", "namespaces", "", "get", "create", "patch", "delete")
	if c.e.opts.NFS != nil {
		add("", "persistentvolumes", "", "get", "create")
	}

	reviews := make([]access, 0, len(needed))
	for a := range needed {
		reviews = append(reviews, a)
	}
	missing, errs := c.review(ctx, reviews)
	findings = append(findings, missingFindings(missing)...)
	if len(errs) > 0 {
		findings = append(findings, Finding{Status: Warn,
			Finding: fmt.Sprintf("%d access reviews could not be made: %v", len(errs), errs[0]),
			Remedy:  "run preflight again; if it persists, check that the API server serves authorization.k8s.io/v1"})
	}
	if len(missing) == 0 && len(errs) == 0 {
		findings = append(findings, Finding{Status: OK,
			Finding: fmt.Sprintf("all %d permissions that apply and delete need are granted (%s on %d resources in %s)",
				len(reviews), strings.Join(appVerbs, "/"), countResources(reviews), strings.Join(c.e.namespaces(), ", "))})
	}
	return findings
}

// review asks the API server about each access, concurrently.
func (c *permissionsCheck) review(ctx context.Context, reviews []access) ([]access, []error) {
	var mu sync.Mutex
	var missing []access
	var errs []error
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(reviewConcurrency)
	ssar := c.e.client.Typed.AuthorizationV1().SelfSubjectAccessReviews()
	for _, a := range reviews {
		g.Go(func() error {
			res, err := ssar.Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace,
				}},
			}, metav1.CreateOptions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("review %s %s: %w", a.verb, resourceName(a.group, a.resource), err))
			case !res.Status.Allowed:
				missing = append(missing, a)
			}
			return nil
		})
	}
	_ = g.Wait()
	return missing, errs
}

// missingFindings groups missing accesses into one failed finding per resource and namespace,
// listing exactly the missing verbs, with the kubectl command that grants them.
func missingFindings(missing []access) []Finding {
	type scope struct{ group, resource, namespace string }
	verbs := map[scope][]string{}
	for _, a := range missing {
		s := scope{a.group, a.resource, a.namespace}
		verbs[s] = append(verbs[s], a.verb)
	}
	scopes := make([]scope, 0, len(verbs))
	for s := range verbs {
		scopes = append(scopes, s)
	}
	sort.Slice(scopes, func(i, j int) bool {
		a, b := scopes[i], scopes[j]
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		return resourceName(a.group, a.resource) < resourceName(b.group, b.resource)
	})
	var out []Finding
	for _, s := range scopes {
		vs := sortVerbs(verbs[s])
		res := resourceName(s.group, s.resource)
		where, remedy := "cluster-wide", fmt.Sprintf("ask a cluster admin to grant them: kubectl create clusterrole kfdeploy-%s --verb=%s --resource=%s, then a clusterrolebinding for your user",
			strings.ReplaceAll(res, ".", "-"), strings.Join(vs, ","), res)
		if s.namespace != "" {
			where = "in namespace " + s.namespace
			remedy = fmt.Sprintf("ask an admin to grant them: kubectl create role kfdeploy-%s -n %s --verb=%s --resource=%s, then a rolebinding for your user (or a clusterrole)",
				strings.ReplaceAll(res, ".", "-"), s.namespace, strings.Join(vs, ","), res)
		}
		out = append(out, Finding{Status: Fail,
			Finding: fmt.Sprintf("cannot %s %s %s", strings.Join(vs, ", "), res, where),
			Remedy:  remedy})
	}
	return out
}

// verbOrder is the order people read verbs in.
var verbOrder = []string{"get", "list", "create", "update", "patch", "delete"}

// sortVerbs orders verbs by verbOrder.
func sortVerbs(vs []string) []string {
	rank := map[string]int{}
	for i, v := range verbOrder {
		rank[v] = i + 1
	}
	sort.Slice(vs, func(i, j int) bool {
		ri, rj := rank[vs[i]], rank[vs[j]]
		if ri != rj {
			return ri < rj
		}
		return vs[i] < vs[j]
	})
	return vs
}

// resourceName is "deployments.apps", or "pods" for the core group, as kubectl writes it.
func resourceName(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

func countResources(reviews []access) int {
	seen := map[string]bool{}
	for _, a := range reviews {
		seen[resourceName(a.group, a.resource)] = true
	}
	return len(seen)
}
