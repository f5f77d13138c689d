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

// listPageSize bounds each list response; large sets are read in pages.
const listPageSize = 500

// eachMetadata calls fn for the metadata of every object of a resource in a namespace that
// matches selector, reading pages with client-go's pager.
func (c *Client) eachMetadata(ctx context.Context, resource schema.GroupVersionResource, namespace, selector string, fn func(*metav1.PartialObjectMetadata)) error {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Metadata.Resource(resource).Namespace(namespace).List(ctx, opts)
	})
	p.PageSize = listPageSize
	return p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, func(o runtime.Object) error {
		m, ok := o.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("list %s: unexpected item %T", resource.Resource, o)
		}
		fn(m)
		return nil
	})
}

// listObjects reads every object of a group that matches selector, in pages.
func (c *Client) listObjects(ctx context.Context, k groupKey, selector string) ([]unstructured.Unstructured, error) {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Dynamic.Resource(k.resource).Namespace(k.namespace).List(ctx, opts)
	})
	p.PageSize = listPageSize
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
		return nil, fmt.Errorf("list %s in %q: %w", k.resource.Resource, k.namespace, err)
	}
	return items, nil
}
