package config

import (
	"fmt"
	"sort"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kfdeploy/kfdeploy/pkg/images"
)

// Images is spec.images: where the cluster pulls the app's images from.
//
//	images:
//	  registry: registry.example.com/kubeflow     # <registry>/<path below the original registry>
//	  overrides:                                  # original image → image to use instead
//	    docker.io/library/mysql:8.4.10: docker.io/library/mysql:8.4.11
//	  pullSecrets:                                # what pods log in to the registries with
//	    - regcred                                 # a docker-registry Secret made in the namespace
//	    - name: mirror-login                      # a Secret kfdeploy makes from a docker config
//	      file: mirror-auth.json                  # file (relative to the app directory)
type Images struct {
	// Registry is a mirror prefix: every image is pulled from Registry + its path below its
	// own registry, with its tag and digest.
	Registry string `yaml:"registry,omitempty" json:"registry,omitempty"`
	// Overrides replace single images (keys match in any spelling: mysql:8 is
	// docker.io/library/mysql:8); the mirror prefix then applies to the replacement.
	Overrides map[string]string `yaml:"overrides,omitempty" json:"overrides,omitempty"`
	// PullSecrets name the docker-registry Secrets of the app's namespace that every pod of
	// the app, and every pod its controllers start, pulls its images with (pull.go).
	PullSecrets []PullSecret `yaml:"pullSecrets,omitempty" json:"pullSecrets,omitempty"`

	// lines are where the fields are in app.yaml, for errors found after decoding.
	registryLine  int
	overrideLines map[string]int
}

// UnmarshalYAML decodes spec.images strictly and checks every image reference, so that an
// error names its line of app.yaml.
func (im *Images) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: spec.images must be a mapping (registry, overrides, pullSecrets)", n.Line)}}
	}
	var errs []string
	fail := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, a...))
	}
	im.overrideLines = map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		switch key.Value {
		case "registry":
			if val.Kind != yaml.ScalarNode {
				fail(val.Line, "spec.images.registry must be a string, e.g. registry.example.com/mirror")
				continue
			}
			im.Registry, im.registryLine = val.Value, val.Line
			if _, err := images.ParseMirror(val.Value); err != nil {
				fail(val.Line, "spec.images.registry: %v", err)
			}
		case "overrides":
			if val.Kind != yaml.MappingNode {
				fail(val.Line, "spec.images.overrides must map images to their replacements, e.g. {docker.io/library/mysql:8.0.40: registry.example.com/mysql:8.0.40}")
				continue
			}
			im.Overrides = map[string]string{}
			for j := 0; j+1 < len(val.Content); j += 2 {
				from, to := val.Content[j], val.Content[j+1]
				if from.Kind != yaml.ScalarNode || to.Kind != yaml.ScalarNode {
					fail(from.Line, "spec.images.overrides: each entry maps an image to an image")
					continue
				}
				im.Overrides[from.Value], im.overrideLines[from.Value] = to.Value, from.Line
				if _, err := images.NewRewriter("", map[string]string{from.Value: to.Value}); err != nil {
					fail(from.Line, "spec.images.overrides: %v", err)
				}
			}
		case "pullSecrets":
			var perr []string
			im.PullSecrets, perr = decodePullSecrets(val)
			errs = append(errs, perr...)
		default:
			fail(key.Line, "field %s not found in type config.Images (expected registry, overrides, pullSecrets)", key.Value)
		}
	}
	if len(errs) == 0 {
		if _, err := im.Rewriter(); err != nil {
			fail(n.Line, "spec.images: %v", err)
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// Rewriter returns the rewriter of spec.images; nil images rewrite nothing.
func (im *Images) Rewriter() (*images.Rewriter, error) {
	if im == nil {
		return images.NewRewriter("", nil)
	}
	return images.NewRewriter(im.Registry, im.Overrides)
}

// Line is the line of app.yaml that sets spec.images.registry (field "registry") or the
// override of an image (field: the image as written); 0 when unknown.
func (im *Images) Line(field string) int {
	if im == nil {
		return 0
	}
	if field == "registry" {
		return im.registryLine
	}
	return im.overrideLines[field]
}

// OverrideKeys lists the overridden images as app.yaml writes them, sorted.
func (im *Images) OverrideKeys() []string {
	if im == nil {
		return nil
	}
	keys := make([]string, 0, len(im.Overrides))
	for k := range im.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
