//go:build conformance

package conformance

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// samplesDir holds the sample custom resources that the render tests validate against the
// CRDs (go test runs in the package directory).
const samplesDir = "../../pkg/render/testdata/samples"

// readSamples decodes a sample file.
func readSamples(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	path := filepath.Join(samplesDir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// freePort is a loopback port nothing listens on now: programs that would collide on their
// rendered ports (other programs of this machine hold 8080, 9443, ...) are moved to one.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// syncSecretVolume writes the Secret's keys into dir whenever it changes, as the kubelet keeps
// a secret volume current.
func syncSecretVolume(ctx context.Context, t *testing.T, e *env, ns, name, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(e.Kube, 0, informers.WithNamespace(ns))
	write := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Name != name {
			return
		}
		for k, v := range s.Data {
			tmp := filepath.Join(dir, "."+k+".tmp")
			if err := os.WriteFile(tmp, v, 0o600); err != nil {
				t.Errorf("secret volume %s: %v", name, err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(dir, k)); err != nil {
				t.Errorf("secret volume %s: %v", name, err)
				return
			}
		}
	}
	if _, err := factory.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    write,
		UpdateFunc: func(_, obj any) { write(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
}
