// Package kubetest holds the test helpers that the packages under pkg/kube share: a client that
// maps a few built-in kinds without a cluster, objects built in one line, clocks that move
// only when told, and a count of the lists a fake clientset served.
package kubetest

import (
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// ResettableMapper adds the Reset that kube.Client's mapper needs to a static mapper.
type ResettableMapper struct{ *meta.DefaultRESTMapper }

// Reset implements meta.ResettableRESTMapper; a static mapper has nothing to forget.
func (ResettableMapper) Reset() {}

// OfflineClient maps a few built-in kinds without a cluster.
func OfflineClient() *kube.Client {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	return &kube.Client{Mapper: ResettableMapper{DefaultRESTMapper: m}}
}

// Object is an object of the given kind and name ("" ns for cluster-scoped), with extra
// top-level fields.
func Object(apiVersion, kind, ns, name string, extra map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if ns != "" {
		md["namespace"] = ns
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": md}
	for k, v := range extra {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

// Metadata is a fake metadata client that serves objs.
func Metadata(t testing.TB, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

// ConfigMapMeta is the metadata of a ConfigMap, as the metadata client lists it.
func ConfigMapMeta(ns, name string, labels map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

// CountLists counts the list actions of a fake clientset per "resource/namespace", to check
// that something was listed once.
func CountLists(actions []k8stesting.Action) map[string]int {
	out := map[string]int{}
	for _, a := range actions {
		if a.GetVerb() == "list" {
			out[a.GetResource().Resource+"/"+a.GetNamespace()]++
		}
	}
	return out
}

// Clock is a kube.LockClock that moves only when told: Advance(mono, wall) moves each clock.
type Clock struct {
	mu   sync.Mutex
	mono time.Duration
	wall time.Time
}

// NewClock is a Clock that starts at the machine's time of day.
func NewClock() *Clock { return &Clock{wall: time.Now().Round(0)} }

// Monotonic implements kube.LockClock.
func (f *Clock) Monotonic() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

// Wall implements kube.LockClock.
func (f *Clock) Wall() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

// Advance moves the monotonic clock by mono and the wall clock by wall.
func (f *Clock) Advance(mono, wall time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mono += mono
	f.wall = f.wall.Add(wall)
}
