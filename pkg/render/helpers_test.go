package render

import (
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Helpers shared by the components' render tests.

// find is the rendered object of kind and name; the test fails without it.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

// emissaryDocs parses the Emissary resources (Mappings, Hosts, Listeners, Modules) of an object's
// getambassador.io/config annotation.
func emissaryDocs(t *testing.T, o *unstructured.Unstructured) []map[string]any {
	t.Helper()
	config, ok := o.GetAnnotations()["getambassador.io/config"]
	if !ok {
		return nil
	}
	var out []map[string]any
	for _, doc := range strings.Split(config, "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var r map[string]any
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: getambassador.io/config annotation: %v", manifest.IDOf(o), err)
		}
		out = append(out, r)
	}
	return out
}

// readSample decodes a sample file of testdata/samples.
func readSample(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
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
