package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/internal/kubetest"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

type discard struct{}

func (discard) Object(string, Action, string)      {}
func (discard) Step(string, ...any)                {}
func (discard) Waiting(string, int, int, []string) {}

// TestDeleteAndWaitTimesOutNamingFinalizers: an object that a finalizer keeps is named, with
// its finalizer, when the poll (wait.PollUntilContextTimeout) gives up.
func TestDeleteAndWaitTimesOutNamingFinalizers(t *testing.T) {
	s := inventory.ApplySet{App: "app", Namespace: "ns"}
	held := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "held", UID: "u1", Finalizers: []string{"example.com/hold"},
			Labels: map[string]string{inventory.LabelPartOf: s.ID()}},
	}
	md := kubetest.Metadata(t, held)
	// A finalizer keeps the object: the delete is accepted, the object stays.
	md.PrependReactor("delete", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	c := client{&kube.Client{Metadata: md}}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	m := inventory.Member{ID: manifest.ID{Kind: "ConfigMap", Namespace: "ns", Name: "held"}, Meta: held.ObjectMeta,
		Mapping: &meta.RESTMapping{Resource: gvr, Scope: meta.RESTScopeNamespace}}
	res := &Result{}
	// The deadline is the run's (Delete sets it once for every level), not one per call.
	ctx, cancel := readiness.WithRunTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := c.deleteAndWait(ctx, s, []inventory.Member{m}, DeleteOptions{Timeout: 1500 * time.Millisecond, Concurrency: 1}, res, discard{})
	if err == nil || !strings.Contains(err.Error(), "ns/ConfigMap/held (finalizers: example.com/hold)") {
		t.Fatalf("deleteAndWait of a held object: error %v, want it named with its finalizer", err)
	}
	if len(res.Objects) != 0 {
		t.Errorf("a held object was reported as %v", res.Objects)
	}
}

// TestApplyStopsAfterTheWallClockJumps: the machine sleeps past the Lease while a level is
// written (the wall clock jumps, the monotonic one does not). The level in flight finishes; the
// next level is not written, and the run fails saying it lost the lock.
func TestApplyStopsAfterTheWallClockJumps(t *testing.T) {
	clock := kubetest.NewClock()
	cs := fake.NewClientset()
	apiServices := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{apiServices: "APIServiceList"})
	var mu sync.Mutex
	var written []string
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		mu.Lock()
		written = append(written, p.GetResource().Resource+"/"+p.GetName())
		mu.Unlock()
		if p.GetResource().Resource == "configmaps" {
			clock.Advance(0, 2*kube.DefaultLockTiming().Duration) // suspended while it was sent
		}
		out := &unstructured.Unstructured{}
		if err := out.UnmarshalJSON(p.GetPatch()); err != nil {
			return true, nil, err
		}
		return true, out, nil
	})
	c := kubetest.OfflineClient()
	c.Mapper.(kubetest.ResettableMapper).Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	c.Typed, c.Dynamic, c.LockTiming = cs, dyn, kube.LockTiming{Clock: clock}
	c.Metadata = kubetest.Metadata(t) // apply lists the cluster's inventories
	s := inventory.ApplySet{App: "app", Namespace: "ns"}
	held, err := lock.Acquire(context.Background(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	objs := []*unstructured.Unstructured{
		kubetest.Object("v1", "ConfigMap", "ns", "settings", map[string]any{"data": map[string]any{"a": "b"}}),
		kubetest.Object("apps/v1", "Deployment", "ns", "web", map[string]any{"spec": map[string]any{}}),
	}
	_, err = Apply(held.Context(), c, s, objs, ApplyOptions{Concurrency: 1}, discard{})
	var lostErr *lock.LostError
	if !errors.As(err, &lostErr) || !strings.Contains(err.Error(), "suspended") {
		t.Fatalf("apply: %v, want the lost-lock error saying the machine was suspended", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(written, []string{"configmaps/settings"}) {
		t.Errorf("written %v, want the ConfigMap alone: nothing after the jump", written)
	}
}
