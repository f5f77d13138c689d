package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

type discard struct{}

func (discard) Object(string, Action, string)      {}
func (discard) Step(string, ...any)                {}
func (discard) Waiting(string, int, int, []string) {}

// TestDeleteAndWaitTimesOutNamingFinalizers: an object that a finalizer keeps is named, with
// its finalizer, when the poll (wait.PollUntilContextTimeout) gives up.
func TestDeleteAndWaitTimesOutNamingFinalizers(t *testing.T) {
	s := ApplySet{App: "app", Namespace: "ns"}
	held := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "held", UID: "u1", Finalizers: []string{"example.com/hold"},
			Labels: map[string]string{LabelPartOf: s.ID()}},
	}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, held)
	// A finalizer keeps the object: the delete is accepted, the object stays.
	md.PrependReactor("delete", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	c := &Client{Metadata: md}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	m := member{id: manifest.ID{Kind: "ConfigMap", Namespace: "ns", Name: "held"}, meta: held.ObjectMeta,
		mapping: &meta.RESTMapping{Resource: gvr, Scope: meta.RESTScopeNamespace}}
	res := &Result{}
	// The deadline is the run's (Delete sets it once for every level), not one per call.
	ctx, cancel := WithRunTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := c.deleteAndWait(ctx, s, []member{m}, DeleteOptions{Timeout: 1500 * time.Millisecond, Concurrency: 1}, res, discard{})
	if err == nil || !strings.Contains(err.Error(), "ns/ConfigMap/held (finalizers: example.com/hold)") {
		t.Fatalf("deleteAndWait of a held object: error %v, want it named with its finalizer", err)
	}
	if len(res.Objects) != 0 {
		t.Errorf("a held object was reported as %v", res.Objects)
	}
}

// crd is a CRD as the API server reports it, with the given conditions.
func crd(name string, conds ...map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
	}}
	list := make([]any, len(conds))
	for i, c := range conds {
		list[i] = c
	}
	_ = unstructured.SetNestedSlice(u.Object, list, "status", "conditions")
	return u
}

func crdPlans(names ...string) []planned {
	var ps []planned
	for _, n := range names {
		ps = append(ps, planned{id: manifest.ID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: n}})
	}
	return ps
}

// TestWaitEstablishedOneDeadlineNamesAll: three CRDs that cannot become Established end the
// wait at the run's one deadline with one error naming all three and why.
func TestWaitEstablishedOneDeadlineNamesAll(t *testing.T) {
	conflict := map[string]any{"type": "NamesAccepted", "status": "False", "reason": "KindConflict", "message": "kind is already in use"}
	names := []string{"as.example.com", "bs.example.com", "cs.example.com"}
	var objs []runtime.Object
	for _, n := range names {
		objs = append(objs, crd(n, conflict))
	}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), objs...)
	c := &Client{Dynamic: dyn}
	const timeout = 500 * time.Millisecond
	ctx, cancel := WithRunTimeout(context.Background(), timeout)
	defer cancel()
	err := c.waitEstablished(ctx, crdPlans(names...), timeout, discard{})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "3 CustomResourceDefinitions not Established") || strings.Count(msg, "after") != 1 {
		t.Errorf("want one deadline error for the three CRDs, got:\n%s", msg)
	}
	for _, n := range names {
		if !strings.Contains(msg, "CustomResourceDefinition "+n+": NamesAccepted False: KindConflict") {
			t.Errorf("the error does not name %s with its condition:\n%s", n, msg)
		}
	}
}

// TestWaitEstablishedReportsForbidden: an error while waiting is that error, at once, not a
// timeout.
func TestWaitEstablishedReportsForbidden(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	dyn.PrependReactor("get", "customresourcedefinitions", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(crdResource.GroupResource(), "as.example.com", errors.New("RBAC: get denied"))
	})
	c := &Client{Dynamic: dyn}
	ctx, cancel := WithRunTimeout(context.Background(), time.Hour)
	defer cancel()
	err := c.waitEstablished(ctx, crdPlans("as.example.com"), time.Hour, discard{})
	if !apierrors.IsForbidden(err) || errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want the Forbidden error itself", err)
	}
}

// TestWaitEstablishedWaitsForAll: CRDs already Established end the wait at once.
func TestWaitEstablishedWaitsForAll(t *testing.T) {
	established := map[string]any{"type": "Established", "status": "True"}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), crd("as.example.com", established), crd("bs.example.com", established))
	c := &Client{Dynamic: dyn}
	ctx, cancel := WithRunTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := c.waitEstablished(ctx, crdPlans("as.example.com", "bs.example.com"), time.Hour, discard{}); err != nil {
		t.Fatal(err)
	}
}

// TestWaitEndedTellsCausesApart: the run's deadline, a lost lock and an interrupt each end a
// wait with their own error.
func TestWaitEndedTellsCausesApart(t *testing.T) {
	deadline := errors.New("pending: x")
	onDeadline := func() error { return deadline }
	ctx, cancel := WithRunTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := waitEnded(ctx, ctx.Err(), onDeadline); err != deadline {
		t.Errorf("deadline: %v", err)
	}
	lost := &LockLostError{App: "a", Lease: "ns/l", Reason: "renewals failed"}
	lctx, lcancel := context.WithCancelCause(context.Background())
	lcancel(lost)
	if err := waitEnded(lctx, lctx.Err(), onDeadline); err != lost {
		t.Errorf("lost lock: %v", err)
	}
	ictx, icancel := context.WithCancel(context.Background())
	icancel()
	if err := waitEnded(ictx, ictx.Err(), onDeadline); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupt: %v", err)
	}
}
