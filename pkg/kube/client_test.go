package kube

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/restmapper"
)

func TestUnreachableTellsRefusedConnectionFromRefusedCredentials(t *testing.T) {
	refused := Unreachable("https://127.0.0.1:1", fmt.Errorf("Get \"https://127.0.0.1:1/version\": %w", &netOpError{err: syscall.ECONNREFUSED}))
	if !strings.Contains(refused.Error(), "cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused") {
		t.Errorf("connection refused: got %q", refused)
	}
	creds := Unreachable("https://api:6443", apierrors.NewUnauthorized("token expired"))
	if !strings.Contains(creds.Error(), "refused the credentials") || strings.Contains(creds.Error(), "cannot reach") {
		t.Errorf("401: got %q, want a message about credentials, not reachability", creds)
	}
	if strings.Contains(creds.Error(), "\n") {
		t.Errorf("message spans lines: %q", creds)
	}
}

// A kind installed after discovery was cached (by another tool, or read before preflight
// refreshed the cache) is found: Mapping reads discovery anew once before it gives up.
func TestMappingRediscoversOnce(t *testing.T) {
	cs := fake.NewSimpleClientset()
	fd := cs.Discovery().(*fakediscovery.FakeDiscovery)
	fd.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap", Namespaced: true}}}}
	disc := memory.NewMemCacheClient(fd)
	c := &Client{Discovery: disc, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(disc), rediscovered: new(atomic.Bool)}
	route := schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
	if _, err := c.Mapping(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}); err != nil {
		t.Fatal(err) // the mapper has read discovery: without HTTPRoute
	}

	// The CRD is installed now.
	fd.Resources = append(fd.Resources, &metav1.APIResourceList{GroupVersion: "gateway.networking.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}}})
	m, err := c.Mapping(route)
	if err != nil || m.Resource.Resource != "httproutes" {
		t.Fatalf("HTTPRoute after its CRD was installed: %v, %v", m, err)
	}

	// A kind that is truly missing: the error users can act on, and discovery is read anew only once.
	_, err = c.Mapping(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"})
	if err == nil || !strings.Contains(err.Error(), "the cluster does not serve kind Widget") {
		t.Errorf("missing kind: %v", err)
	}
}
