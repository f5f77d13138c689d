package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/pager"
)

// ListPageSize bounds each list response of whole objects; large sets are read in pages.
const ListPageSize = 500

// MetadataPageSize bounds each list response of metadata only: an object's metadata is a small
// part of it, and each page is a round trip (5,000 members of one kind: one page, not ten).
const MetadataPageSize = 5000

// EachMetadata calls fn for the metadata of every object of a resource in a namespace that
// matches selector, reading pages with client-go's pager.
func (c *Client) EachMetadata(ctx context.Context, resource schema.GroupVersionResource, namespace, selector string, fn func(*metav1.PartialObjectMetadata)) error {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Metadata.Resource(resource).Namespace(namespace).List(ctx, opts)
	})
	p.PageSize = MetadataPageSize
	return p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, func(o runtime.Object) error {
		m, ok := o.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("list %s: unexpected item %T", resource.Resource, o)
		}
		fn(m)
		return nil
	})
}

// GroupKey is the objects of one resource in one namespace, read together with one list call.
type GroupKey struct {
	Resource  schema.GroupVersionResource
	Namespace string
}

// ListObjects reads every object of a group that matches selector, in pages.
func (c *Client) ListObjects(ctx context.Context, k GroupKey, selector string) ([]unstructured.Unstructured, error) {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Dynamic.Resource(k.Resource).Namespace(k.Namespace).List(ctx, opts)
	})
	p.PageSize = ListPageSize
	var items []unstructured.Unstructured
	err := p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, func(o runtime.Object) error {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("unexpected item %T", o)
		}
		items = append(items, *u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %q: %w", k.Resource.Resource, k.Namespace, err)
	}
	return items, nil
}
