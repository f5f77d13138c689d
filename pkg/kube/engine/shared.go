package engine

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

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Sharing a cluster-scoped object between two apps on one cluster is recorded in the
// inventory (see inventory.AnnotationShared); planning decides here which objects may be shared
// and which stay the other app's.

// sharedReason is the keep reason of an object other apps list, or "" when none does.
func sharedReason(others []inventory.AppRef) string {
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
func ShareVerdict(o *unstructured.Unstructured, owner inventory.ApplySet, live metav1.ObjectMeta) string {
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
	c := label(owner, o)
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
func (c client) planShared(ctx context.Context, s inventory.ApplySet, plan *Plan, parents inventory.Parents) ([]manifest.ID, error) {
	byResource := map[schema.GroupVersionResource][]*Step{}
	for l := range plan.Levels {
		for i := range plan.Levels[l] {
			st := &plan.Levels[l][i]
			if st.Change == ChangeCreate && st.ID.Namespace == "" && st.target.mapping != nil && !kube.IsNamespaced(st.target.mapping) {
				byResource[st.target.mapping.Resource] = append(byResource[st.target.mapping.Resource], st)
			}
		}
	}
	var shared []manifest.ID
	var refused []string
	for gvr, steps := range byResource {
		live := map[string]metav1.ObjectMeta{}
		// Objects of another ApplySet only: the label exists and names another set.
		err := c.EachMetadata(ctx, gvr, "", inventory.LabelPartOf+","+notMemberOf(s), func(item *metav1.PartialObjectMetadata) {
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
func (c client) sharedMembers(ctx context.Context, s inventory.ApplySet, ids []manifest.ID, parents inventory.Parents) (own map[manifest.ID]inventory.Member, kept map[manifest.ID]string, err error) {
	own, kept = map[manifest.ID]inventory.Member{}, map[manifest.ID]string{}
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
		if why := sharedReason(parents.Others(s, id, live.ObjectMeta)); why != "" {
			kept[id] = why
			continue
		}
		own[id] = inventory.Member{ID: id, Mapping: m, Meta: live.ObjectMeta}
	}
	return own, kept, nil
}
