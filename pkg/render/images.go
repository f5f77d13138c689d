package render

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/images"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// RuntimeImage is an image that a component's controllers pull at run time (Argo's executor,
// Katib's suggestion services and metrics collectors, notebook images, the training operator's
// init container): named in flags or configuration, not in a pod spec the app applies. A
// component declares them with an optional function next to render:
//
//	runtimeImages(p, env):: [{ image: p.executorImage, use: 'executor of workflow pods' }],
type RuntimeImage struct {
	Image string `json:"image"`
	Use   string `json:"use"`
}

// WithImages returns a Renderer that renders every image as table maps it (image as written →
// image to pull), in one place for pod specs and configuration alike: the built-in image table
// (kfdeploy/images.libsonnet), which parameter defaults and templates take their images from,
// is served rewritten; parameter values (app.yaml's included) equal to a key are replaced before
// the template sees them, so configuration the template derives from them — and hashes of that
// configuration — are computed from the rewritten images; and pod-spec images the template
// names otherwise (plain YAML components, literals) are replaced in the rendered objects. An
// image of a pod spec that is not in the table is an error: the table must come from a render
// of the same app.
func (r *Renderer) WithImages(table map[string]string) *Renderer {
	c := *r
	c.images = table
	return &c
}

// RuntimeImages evaluates the component's runtimeImages(params, env), or nothing when it has
// none (plain YAML components have none).
func (r *Renderer) RuntimeImages(name string, params map[string]any, env Env) ([]RuntimeImage, error) {
	info, err := r.Describe(name)
	if err != nil || info.plainYAML {
		return nil, err
	}
	out, err := r.evaluate(info, params, env, "runtimeImages")
	if err != nil {
		return nil, err
	}
	var list []RuntimeImage
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("component %s: runtimeImages must return a list of {image, use}: %w", name, err)
	}
	for i, img := range list {
		if img.Image == "" || img.Use == "" {
			return nil, fmt.Errorf("component %s: runtimeImages[%d] needs an image and a use, got %s", name, i, JSONText(img))
		}
		if _, err := images.Normalize(img.Image); err != nil {
			return nil, fmt.Errorf("component %s: runtimeImages[%d]: %w", name, i, err)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Image < list[j].Image })
	return list, nil
}

// rewriteParams replaces the parameter values that are images of the table.
func (r *Renderer) rewriteParams(params map[string]any) map[string]any {
	if r.images == nil {
		return params
	}
	return images.RewriteStrings(params, r.images).(map[string]any)
}

// rewritePodImages sets the pod-spec images of the objects that the template did not take
// from the rewritten table or parameters (those are already values of the table).
func (r *Renderer) rewritePodImages(component string, objs []*unstructured.Unstructured) error {
	if r.images == nil {
		return nil
	}
	done := map[string]bool{}
	for _, to := range r.images {
		done[to] = true
	}
	for _, o := range objs {
		err := images.PodImages(o.Object, func(c images.Container) (string, error) {
			if to, ok := r.images[c.Image]; ok {
				return to, nil
			}
			if done[c.Image] {
				return c.Image, nil
			}
			return "", fmt.Errorf("component %s: %s container %s: image %s was not in the app's image table", component, manifest.IDOf(o), c.Name, c.Image)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// imagesLibrary is the built-in image table; originalSuffix reads it as written when the
// importer serves it rewritten.
const (
	imagesLibrary  = "lib/images.libsonnet"
	originalSuffix = ".original"
)

// readEmbedded reads a file of the built-in library, the image table rewritten by the
// importer's images when it has them.
func (i *importer) readEmbedded(name string) ([]byte, error) {
	switch {
	case name == imagesLibrary+originalSuffix:
		return fs.ReadFile(i.library, imagesLibrary)
	case name == imagesLibrary && i.images != nil:
		table, err := json.Marshal(i.images)
		if err != nil {
			return nil, fmt.Errorf("encode image table: %w", err)
		}
		return []byte(strings.Join([]string{
			"// The image table of kfdeploy/images.libsonnet as spec.images of app.yaml rewrites it.",
			"local table = " + string(table) + ";",
			"local rewrite(v) =",
			"  if std.isString(v) then std.get(table, v, v)",
			"  else if std.isObject(v) then { [k]: rewrite(v[k]) for k in std.objectFields(v) }",
			"  else if std.isArray(v) then std.map(rewrite, v)",
			"  else v;",
			"rewrite(import '" + builtinRoot + imagesLibrary + originalSuffix + "')",
			"",
		}, "\n")), nil
	}
	return fs.ReadFile(i.library, name)
}
