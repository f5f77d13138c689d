package inventory

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
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

// Parent is what one parent Secret records, as far as sharing is concerned.
type Parent struct {
	Ref    AppRef
	Kinds  sets.Set[schema.GroupKind]
	Shared sets.Set[manifest.ID]
}

// Parents indexes the kfdeploy parents of the cluster by their ApplySet id.
type Parents map[string]Parent

// ReadParents reads every kfdeploy ApplySet parent of the cluster: one paginated metadata list
// of the Secrets that carry the applyset.kubernetes.io/id label (metadata only: never their data).
func ReadParents(ctx context.Context, c *kube.Client) (Parents, error) {
	out := Parents{}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	err := c.EachMetadata(ctx, secrets, "", LabelApplySetID, func(item *metav1.PartialObjectMetadata) {
		if !strings.HasPrefix(item.Annotations[AnnotationTooling], "kfdeploy/") || item.DeletionTimestamp != nil {
			return // another tool's set, or an app whose namespace is being deleted
		}
		app := item.Labels[LabelApp]
		if app == "" {
			app = strings.TrimPrefix(item.Name, parentNamePrefix)
		}
		out[item.Labels[LabelApplySetID]] = Parent{
			Ref:    AppRef{App: app, Namespace: item.Namespace},
			Kinds:  sets.New(kube.ParseKinds(item.Annotations[AnnotationGroupKinds])...),
			Shared: sets.New(parseIDs(item.Annotations[AnnotationShared])...),
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
	if set == "" || !ok || !info.Kinds.Has(id.GroupKind()) {
		return ApplySet{}, AppRef{}, false
	}
	return ApplySet{App: info.Ref.App, Namespace: info.Ref.Namespace}, info.Ref, true
}

// Others lists the apps other than s that list the object: its owner (when not s) and every app
// whose parent records it as shared.
func (p Parents) Others(s ApplySet, id manifest.ID, live metav1.ObjectMeta) []AppRef {
	self := s.ID()
	seen := sets.New[AppRef]()
	if _, owner, ok := p.Owner(id, live); ok && live.Labels[LabelPartOf] != self {
		seen.Insert(owner)
	}
	for set, info := range p {
		if set != self && info.Shared.Has(id) {
			seen.Insert(info.Ref)
		}
	}
	out := seen.UnsortedList()
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
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
