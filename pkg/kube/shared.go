package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Sharing a cluster-scoped object between two apps on one cluster. A member carries one
// applyset.kubernetes.io/part-of label, so an object two apps declare belongs to the app that
// applied it first (its owner); the second app does not apply it (which would move the label,
// and with the same field manager, take the object over) but records it in its own parent's
// AnnotationShared. An app "lists" an object when it owns it (the label names its set and its
// parent lists the kind) or its parent's AnnotationShared names it. Delete and prune remove an
// object only when no other app lists it.
//
// Only CustomResourceDefinitions declared identically (the same content hash under the
// owner's labels) are shared: every other cluster-scoped object of kfdeploy's components
// serves one namespace (webhook configurations and APIServices call one namespace's Service,
// ClusterRoleBindings bind one namespace's ServiceAccounts), and a CRD whose content differs
// would be changed under the other app.
const AnnotationShared = "kfdeploy.dev/shared-objects"

// AppRef names a kfdeploy app on the cluster.
type AppRef struct {
	App       string
	Namespace string
}

func (a AppRef) String() string { return fmt.Sprintf("app %s in namespace %s", a.App, a.Namespace) }

// parentInfo is what one parent Secret records, as far as sharing is concerned.
type parentInfo struct {
	ref    AppRef
	kinds  sets.Set[schema.GroupKind]
	shared sets.Set[manifest.ID]
}

// Parents indexes the kfdeploy parents of the cluster by their ApplySet id.
type Parents map[string]parentInfo

// ReadParents reads every kfdeploy ApplySet parent of the cluster: one paginated metadata list
// of the Secrets that carry the applyset.kubernetes.io/id label (metadata only: never their data).
func (c *Client) ReadParents(ctx context.Context) (Parents, error) {
	out := Parents{}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	err := c.eachMetadata(ctx, secrets, "", LabelApplySetID, func(item *metav1.PartialObjectMetadata) {
		if !strings.HasPrefix(item.Annotations[AnnotationTooling], "kfdeploy/") || item.DeletionTimestamp != nil {
			return // another tool's set, or an app whose namespace is being deleted
		}
		app := item.Labels[LabelApp]
		if app == "" {
			app = strings.TrimPrefix(item.Name, parentNamePrefix)
		}
		out[item.Labels[LabelApplySetID]] = parentInfo{
			ref:    AppRef{App: app, Namespace: item.Namespace},
			kinds:  sets.New(parseKinds(item.Annotations[AnnotationGroupKinds])...),
			shared: sets.New(parseIDs(item.Annotations[AnnotationShared])...),
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list the kfdeploy apps of the cluster (secrets labelled %s): %w", LabelApplySetID, err)
	}
	return out, nil
}

// Owner is the app whose inventory holds the object as a member: its part-of label names the
// app's set and the app's parent lists the object's kind. ok is false for an object of no
// live app (a leftover, which apply adopts).
func (p Parents) Owner(id manifest.ID, live metav1.ObjectMeta) (ApplySet, AppRef, bool) {
	set := live.Labels[LabelPartOf]
	info, ok := p[set]
	if set == "" || !ok || !info.kinds.Has(id.GroupKind()) {
		return ApplySet{}, AppRef{}, false
	}
	return ApplySet{App: info.ref.App, Namespace: info.ref.Namespace}, info.ref, true
}

// others lists the apps other than s that list the object: its owner (when not s) and every app
// whose parent records it as shared.
func (p Parents) others(s ApplySet, id manifest.ID, live metav1.ObjectMeta) []AppRef {
	self := s.ID()
	seen := sets.New[AppRef]()
	if _, owner, ok := p.Owner(id, live); ok && live.Labels[LabelPartOf] != self {
		seen.Insert(owner)
	}
	for set, info := range p {
		if set != self && info.shared.Has(id) {
			seen.Insert(info.ref)
		}
	}
	out := seen.UnsortedList()
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// sharedReason is the keep reason of an object other apps list, or "" when none does.
func sharedReason(others []AppRef) string {
	if len(others) == 0 {
		return ""
	}
	names := make([]string, 0, len(others))
	for _, o := range others {
		names = append(names, o.String())
	}
	return "shared with " + strings.Join(names, " and ") + ", which still lists it"
}

// ShareVerdict says whether the desired object o may be shared with owner, which applied the
// live object whose metadata is live: "" when it may (a CustomResourceDefinition declared
// identically), else why it cannot serve two apps.
func ShareVerdict(o *unstructured.Unstructured, owner ApplySet, live metav1.ObjectMeta) string {
	id := manifest.IDOf(o)
	switch {
	case id.Group == "admissionregistration.k8s.io":
		return "a webhook configuration calls the Service of one namespace"
	case id.Group == "apiregistration.k8s.io":
		return "an APIService routes its API group to the Service of one namespace"
	case id.Group == "rbac.authorization.k8s.io" && id.Kind == "ClusterRoleBinding":
		return "it binds the ServiceAccounts of one namespace"
	case !id.IsCRD():
		return "only CustomResourceDefinitions that both apps declare identically are shared"
	}
	c := (&Client{}).label(owner, o)
	c.SetNamespace("")
	h, err := contentHash(c)
	if err != nil || h != live.Annotations[AnnotationAppliedHash] {
		return "its definition differs from the one that app applied (another kfdeploy version or other component parameters)"
	}
	return ""
}

// planShared looks, for each cluster-scoped object the plan would create, whether another live
// app owns it. One it may share becomes a step that sends nothing (and waits for nothing);
// one it may not is an error naming the owner. It returns the shared objects, for the
// inventory to record.
func (c *Client) planShared(ctx context.Context, s ApplySet, plan *Plan, parents Parents) ([]manifest.ID, error) {
	byResource := map[schema.GroupVersionResource][]*Step{}
	for l := range plan.Levels {
		for i := range plan.Levels[l] {
			st := &plan.Levels[l][i]
			if st.Change == ChangeCreate && st.ID.Namespace == "" && st.target.mapping != nil && !isNamespaced(st.target.mapping) {
				byResource[st.target.mapping.Resource] = append(byResource[st.target.mapping.Resource], st)
			}
		}
	}
	var shared []manifest.ID
	var refused []string
	for gvr, steps := range byResource {
		live := map[string]metav1.ObjectMeta{}
		// Objects of another ApplySet only: the label exists and names another set.
		err := c.eachMetadata(ctx, gvr, "", LabelPartOf+","+notMemberOf(s), func(item *metav1.PartialObjectMetadata) {
			live[item.Name] = item.ObjectMeta
		})
		if err != nil {
			return nil, fmt.Errorf("look for %s that other apps own: %w", gvr.Resource, err)
		}
		for _, st := range steps {
			meta, ok := live[st.ID.Name]
			if !ok {
				continue
			}
			owner, ref, ok := parents.Owner(st.ID, meta)
			if !ok {
				continue // a leftover of no live app: adopted
			}
			if why := ShareVerdict(st.target.obj, owner, meta); why != "" {
				refused = append(refused, fmt.Sprintf("%s belongs to kfdeploy %s and cannot serve two apps: %s", st.ID, ref, why))
				continue
			}
			st.Change, st.Reason, st.sharedWith = ChangeNone, "shared with "+ref.String()+", which applied it identically", ref
			shared = append(shared, st.ID)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, fmt.Errorf("%s; remove the component that declares it from this app, or delete the other app first", strings.Join(refused, "; "))
	}
	sort.Slice(shared, func(i, j int) bool { return shared[i].String() < shared[j].String() })
	return shared, nil
}

// sharedMembers reads the objects the inventory records as shared (one metadata GET each: a few
// CRDs) and returns those no other app lists any more, as members of s (their owner is gone:
// they are s's to keep or delete), and those another app still lists, with the reason.
func (c *Client) sharedMembers(ctx context.Context, s ApplySet, ids []manifest.ID, parents Parents) (own map[manifest.ID]member, kept map[manifest.ID]string, err error) {
	own, kept = map[manifest.ID]member{}, map[manifest.ID]string{}
	for _, id := range ids {
		m, err := c.Mapper.RESTMapping(id.GroupKind())
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("shared object %s: %w", id, err)
		}
		live, err := c.Metadata.Resource(m.Resource).Get(ctx, id.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read shared object %s: %w", id, err)
		}
		if why := sharedReason(parents.others(s, id, live.ObjectMeta)); why != "" {
			kept[id] = why
			continue
		}
		own[id] = member{id: id, mapping: m, meta: live.ObjectMeta}
	}
	return own, kept, nil
}

// parseIDs reads a list of cluster-scoped object IDs as ID.String writes them ("Kind.group/name").
func parseIDs(s string) []manifest.ID {
	var out []manifest.ID
	for _, p := range splitList(s) {
		kg, name, ok := strings.Cut(p, "/")
		if !ok || name == "" || strings.Contains(name, "/") {
			continue
		}
		kind, group, _ := strings.Cut(kg, ".")
		out = append(out, manifest.ID{Group: group, Kind: kind, Name: name})
	}
	return out
}

// formatIDs writes ids for parseIDs.
func formatIDs(ids []manifest.ID) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return strings.Join(sets.List(sets.New(out...)), ",")
}
