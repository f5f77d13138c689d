package kube

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// member is a live object of the set, as metadata.
type member struct {
	id      manifest.ID
	mapping *meta.RESTMapping
	meta    metav1.ObjectMeta
}

// memberRead is one list that finds members: a kind in a namespace ("" for cluster-scoped).
type memberRead struct {
	gk        schema.GroupKind
	mapping   *meta.RESTMapping
	namespace string
}

// memberReads are the lists that find the members of the given kinds in the given namespaces
// (the inventory's): one per kind and namespace, one per cluster-scoped kind. Kinds the
// cluster no longer serves are left out.
func (c *Client) memberReads(kinds []schema.GroupKind, namespaces []string) ([]memberRead, error) {
	var reads []memberRead
	for _, gk := range kinds {
		m, err := c.Mapper.RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			continue // the kind is gone (its CRD was deleted), and so are its objects
		}
		if err != nil {
			return nil, fmt.Errorf("list members of kind %s: %w", kindString(gk), err)
		}
		scopes := []string{""}
		if isNamespaced(m) {
			scopes = namespaces
		}
		for _, ns := range scopes {
			reads = append(reads, memberRead{gk: gk, mapping: m, namespace: ns})
		}
	}
	return reads, nil
}

// listMembers lists, with the metadata client, every object labelled as part of the set, for
// each kind and namespace the inventory names: one paginated list per (kind, namespace).
func (c *Client) listMembers(ctx context.Context, s ApplySet, kinds []schema.GroupKind, namespaces []string) (map[manifest.ID]member, error) {
	reads, err := c.memberReads(kinds, namespaces)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	found := map[manifest.ID]member{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range reads {
		g.Go(func() error {
			err := c.eachMetadata(ctx, r.mapping.Resource, r.namespace, s.Selector(), func(item *metav1.PartialObjectMetadata) {
				id := manifest.ID{Group: r.gk.Group, Kind: r.gk.Kind, Namespace: item.Namespace, Name: item.Name}
				mu.Lock()
				found[id] = member{id: id, mapping: r.mapping, meta: item.ObjectMeta}
				mu.Unlock()
			})
			if err != nil {
				return fmt.Errorf("list %s in %q: %w", kindString(r.gk), r.namespace, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return found, nil
}
