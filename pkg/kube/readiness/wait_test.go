package readiness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

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

func crdTargets(names ...string) []Target {
	var ts []Target
	for _, n := range names {
		ts = append(ts, Target{ID: manifest.ID{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: n}})
	}
	return ts
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
	c := &kube.Client{Dynamic: dyn}
	const timeout = 500 * time.Millisecond
	ctx, cancel := WithRunTimeout(context.Background(), timeout)
	defer cancel()
	err := WaitEstablished(ctx, c, crdTargets(names...), timeout, noProgress{})
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
		return true, nil, apierrors.NewForbidden(kube.CRDResource.GroupResource(), "as.example.com", errors.New("RBAC: get denied"))
	})
	c := &kube.Client{Dynamic: dyn}
	ctx, cancel := WithRunTimeout(context.Background(), time.Hour)
	defer cancel()
	err := WaitEstablished(ctx, c, crdTargets("as.example.com"), time.Hour, noProgress{})
	if !apierrors.IsForbidden(err) || errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want the Forbidden error itself", err)
	}
}

// TestWaitEstablishedWaitsForAll: CRDs already Established end the wait at once.
func TestWaitEstablishedWaitsForAll(t *testing.T) {
	established := map[string]any{"type": "Established", "status": "True"}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), crd("as.example.com", established), crd("bs.example.com", established))
	c := &kube.Client{Dynamic: dyn}
	ctx, cancel := WithRunTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := WaitEstablished(ctx, c, crdTargets("as.example.com", "bs.example.com"), time.Hour, noProgress{}); err != nil {
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
	if err := Ended(ctx, ctx.Err(), onDeadline); err != deadline {
		t.Errorf("deadline: %v", err)
	}
	lost := &lock.LostError{App: "a", Lease: "ns/l", Reason: "renewals failed"}
	lctx, lcancel := context.WithCancelCause(context.Background())
	lcancel(lost)
	if err := Ended(lctx, lctx.Err(), onDeadline); err != lost {
		t.Errorf("lost lock: %v", err)
	}
	ictx, icancel := context.WithCancel(context.Background())
	icancel()
	if err := Ended(ictx, ictx.Err(), onDeadline); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupt: %v", err)
	}
}
