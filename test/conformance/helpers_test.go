//go:build conformance

package conformance

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
