package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Contents counts the objects of one kind in one namespace that live in a CustomResourceDefinition
// or a namespace kfdeploy would delete and that the app did not create: users' custom resources,
// notebook claims, jobs. Deleting the holder deletes them.
type Contents struct {
	Holder    string   `json:"holder"`              // the CRD or Namespace they live in, as an object ID
	Kind      string   `json:"kind"`                // Kind.group, "Workflow.argoproj.io"
	Namespace string   `json:"namespace,omitempty"` // "" for cluster-scoped objects
	Count     int      `json:"count"`
	Names     []string `json:"names,omitempty"` // the first maxContentNames names, sorted
}

// maxContentNames bounds the names Contents carries.
const maxContentNames = 10

// notMemberOf selects the objects that are not members of s (also those without the label).
func notMemberOf(s inventory.ApplySet) string { return inventory.LabelPartOf + "!=" + s.ID() }

// crdContents lists, with one paginated metadata list across all namespaces at a served version,
// the custom resources of the CRD named name that are not members of s. A CRD that is gone or
// serves no version holds nothing that can be listed.
func (c client) crdContents(ctx context.Context, s inventory.ApplySet, name string) ([]Contents, error) {
	crd, err := c.Dynamic.Resource(kube.CRDResource).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CustomResourceDefinition %s: %w", name, err)
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	version := servedVersion(crd)
	if version == "" {
		return nil, nil
	}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	holder := manifest.ID{Group: kube.CRDResource.Group, Kind: "CustomResourceDefinition", Name: name}.String()
	found := map[string][]string{}
	err = c.EachMetadata(ctx, gvr, "", notMemberOf(s), func(item *metav1.PartialObjectMetadata) {
		found[item.Namespace] = append(found[item.Namespace], item.Name)
	})
	if apierrors.IsNotFound(err) {
		return nil, nil // not established yet: it serves nothing
	}
	if err != nil {
		return nil, fmt.Errorf("list the %s of CustomResourceDefinition %s: %w", plural, name, err)
	}
	kg := kube.KindString(schema.GroupKind{Group: group, Kind: kind})
	var out []Contents
	for ns, names := range found {
		out = append(out, newContents(holder, kg, ns, names))
	}
	sortContents(out)
	return out, nil
}

// servedVersion is the CRD's storage version when it is served, else its first served version.
func servedVersion(crd *unstructured.Unstructured) string {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	first := ""
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(m, "name")
		served, _, _ := unstructured.NestedBool(m, "served")
		storage, _, _ := unstructured.NestedBool(m, "storage")
		if !served {
			continue
		}
		if storage {
			return name
		}
		if first == "" {
			first = name
		}
	}
	return first
}

// ignoredInNamespace: objects the cluster itself puts in every namespace or derives from the
// app's own objects, which are no one's data.
func ignoredInNamespace(gk schema.GroupKind, name string) bool {
	switch {
	case gk.Group == "" && (gk.Kind == "Event" || gk.Kind == "Endpoints"):
		return true
	case gk.Group == "events.k8s.io" || gk.Group == "coordination.k8s.io" || gk.Group == "metrics.k8s.io":
		return true // events, leases (leader election, kfdeploy's lock), pod metrics
	case gk.Group == "" && gk.Kind == "ConfigMap" && name == "kube-root-ca.crt":
		return true
	case gk.Group == "" && gk.Kind == "ServiceAccount" && name == "default":
		return true
	}
	return false
}

// namespaceContents finds what lives in namespace ns that the app s did not create: for every
// listable namespaced resource the server serves (discovery), one paginated metadata list.
// Members of s, objects owned by another object (a Deployment's pods, a Workflow's pods) and
// what the cluster puts in every namespace are not counted.
func (c client) namespaceContents(ctx context.Context, s inventory.ApplySet, ns string) ([]Contents, error) {
	// Fresh discovery: users' kinds are often CRDs installed after the cache was filled.
	c.Discovery.Invalidate()
	lists, err := c.Discovery.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discover the resources of namespace %s: %w", ns, err)
	}
	// The groups that failed (an unavailable aggregated API) cannot be listed, nor can the
	// namespace controller delete their objects; what the others hold still counts.
	holder := manifest.ID{Kind: "Namespace", Name: ns}.String()
	var mu sync.Mutex
	var out []Contents
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, list := range lists {
		gv, perr := schema.ParseGroupVersion(list.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			gk := schema.GroupKind{Group: gv.Group, Kind: r.Kind}
			if gv.Group == "events.k8s.io" || gv.Group == "coordination.k8s.io" || gv.Group == "metrics.k8s.io" {
				continue
			}
			gvr := gv.WithResource(r.Name)
			g.Go(func() error {
				var names []string
				err := c.EachMetadata(gctx, gvr, ns, notMemberOf(s), func(item *metav1.PartialObjectMetadata) {
					if len(item.OwnerReferences) > 0 || item.Labels[inventory.LabelApplySetID] == s.ID() || ignoredInNamespace(gk, item.Name) {
						return
					}
					names = append(names, item.Name)
				})
				if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
					return nil // the resource went away since discovery
				}
				if err != nil {
					return fmt.Errorf("list %s in namespace %s: %w", gvr.Resource, ns, err)
				}
				if len(names) > 0 {
					mu.Lock()
					out = append(out, newContents(holder, kube.KindString(gk), ns, names))
					mu.Unlock()
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sortContents(out)
	return out, nil
}

func newContents(holder, kind, ns string, names []string) Contents {
	sort.Strings(names)
	c := Contents{Holder: holder, Kind: kind, Namespace: ns, Count: len(names)}
	if len(names) > maxContentNames {
		names = names[:maxContentNames]
	}
	c.Names = names
	return c
}

func sortContents(cs []Contents) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Holder != cs[j].Holder {
			return cs[i].Holder < cs[j].Holder
		}
		if cs[i].Kind != cs[j].Kind {
			return cs[i].Kind < cs[j].Kind
		}
		return cs[i].Namespace < cs[j].Namespace
	})
}

// DescribeContents says in a few words what cs hold: "3 Workflows in 2 namespaces" for custom
// resources, "PersistentVolumeClaim claim-alice, 2 Workflows (a, b)" for a namespace's.
func DescribeContents(cs []Contents) string {
	if len(cs) == 0 {
		return "no objects"
	}
	type total struct {
		count int
		nss   map[string]bool
		names []string
		crd   bool
	}
	byKind := map[string]*total{}
	var kinds []string
	for _, c := range cs {
		t := byKind[c.Kind]
		if t == nil {
			t = &total{nss: map[string]bool{}}
			byKind[c.Kind] = t
			kinds = append(kinds, c.Kind)
		}
		t.count += c.Count
		t.nss[c.Namespace] = true
		t.names = append(t.names, c.Names...)
		t.crd = strings.HasPrefix(c.Holder, "CustomResourceDefinition")
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		t := byKind[k]
		kind, _, _ := strings.Cut(k, ".")
		word := pluralKind(kind, t.count)
		switch {
		case len(t.nss) == 1 && t.nss[""]:
			parts = append(parts, fmt.Sprintf("%d %s", t.count, word))
		case t.crd:
			n := len(t.nss)
			parts = append(parts, fmt.Sprintf("%d %s in %d %s", t.count, word, n, pluralKind("namespace", n)))
		default: // a namespace's own objects: name them
			names := strings.Join(t.names, ", ")
			if t.count > len(t.names) {
				names += ", ..."
			}
			parts = append(parts, fmt.Sprintf("%d %s (%s)", t.count, word, names))
		}
	}
	return strings.Join(parts, ", ")
}

// pluralKind is kind for one, an English plural for more.
func pluralKind(kind string, n int) string {
	if n == 1 {
		return kind
	}
	switch {
	case strings.HasSuffix(kind, "s"), strings.HasSuffix(kind, "x"), strings.HasSuffix(kind, "ch"):
		return kind + "es"
	case strings.HasSuffix(kind, "y") && len(kind) > 1 && !strings.ContainsRune("aeiou", rune(kind[len(kind)-2])):
		return kind[:len(kind)-1] + "ies"
	}
	return kind + "s"
}
