package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	err := c.deleteAndWait(context.Background(), s, []member{m}, DeleteOptions{Timeout: 1500 * time.Millisecond, Concurrency: 1}, res, discard{})
	if err == nil || !strings.Contains(err.Error(), "ns/ConfigMap/held (finalizers: example.com/hold)") {
		t.Fatalf("deleteAndWait of a held object: error %v, want it named with its finalizer", err)
	}
	if len(res.Objects) != 0 {
		t.Errorf("a held object was reported as %v", res.Objects)
	}
}
