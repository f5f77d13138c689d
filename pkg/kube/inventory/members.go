package inventory

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Member is a live object of the set, as metadata.
type Member struct {
	ID      manifest.ID
	Mapping *meta.RESTMapping
	Meta    metav1.ObjectMeta
}

// MemberList is one list that finds members: a kind in a namespace ("" for cluster-scoped).
type MemberList struct {
	GroupKind schema.GroupKind
	Mapping   *meta.RESTMapping
	Namespace string
}

// MemberLists are the lists that find the members of the given kinds in the given namespaces
// (the inventory's): one per kind and namespace, one per cluster-scoped kind. Kinds the
// cluster no longer serves are left out.
func MemberLists(c *kube.Client, kinds []schema.GroupKind, namespaces []string) ([]MemberList, error) {
	var reads []MemberList
	for _, gk := range kinds {
		m, err := c.Mapper.RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			continue // the kind is gone (its CRD was deleted), and so are its objects
		}
		if err != nil {
			return nil, fmt.Errorf("list members of kind %s: %w", kube.KindString(gk), err)
		}
		scopes := []string{""}
		if kube.IsNamespaced(m) {
			scopes = namespaces
		}
		for _, ns := range scopes {
			reads = append(reads, MemberList{GroupKind: gk, Mapping: m, Namespace: ns})
		}
	}
	return reads, nil
}

// ListMembers lists, with the metadata client, every object labelled as part of the set, for
// each kind and namespace the inventory names: one paginated list per (kind, namespace).
func ListMembers(ctx context.Context, c *kube.Client, s ApplySet, kinds []schema.GroupKind, namespaces []string) (map[manifest.ID]Member, error) {
	reads, err := MemberLists(c, kinds, namespaces)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	found := map[manifest.ID]Member{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range reads {
		g.Go(func() error {
			err := c.EachMetadata(ctx, r.Mapping.Resource, r.Namespace, s.Selector(), func(item *metav1.PartialObjectMetadata) {
				id := manifest.ID{Group: r.GroupKind.Group, Kind: r.GroupKind.Kind, Namespace: item.Namespace, Name: item.Name}
				mu.Lock()
				found[id] = Member{ID: id, Mapping: r.Mapping, Meta: item.ObjectMeta}
				mu.Unlock()
			})
			if err != nil {
				return fmt.Errorf("list %s in %q: %w", kube.KindString(r.GroupKind), r.Namespace, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return found, nil
}
