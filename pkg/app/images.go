package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/images"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/render"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
	"github.com/kfdeploy/kfdeploy/pkg/smoketest"
)

// Where images are rewritten (spec.images): in the render, once, by an image table (image as a
// component names it → image to pull) that pkg/render applies to the built-in image table,
// to parameter values and to pod specs (render.WithImages). So pod specs and the images that
// controllers read from their configuration (Argo's executor flag, katib-config, the spawner's
// profiles) are rewritten alike, and whatever a template derives from an image (a config hash)
// is derived from the rewritten one. The table is made from a first render of the app as its
// components name the images, which also finds two images that would collide.

// ImageEntry is one image the app pulls, for one component and kind of use.
type ImageEntry struct {
	// Image is what the cluster pulls.
	Image string `json:"image"`
	// Original is the image as the component names it, when spec.images rewrites it.
	Original  string `json:"original,omitempty"`
	Component string `json:"component"`
	// Kind is workload (a pod spec the app applies), runtime (a controller of the app starts or
	// injects it at run time) or test (kfdeploy test runs it).
	Kind string   `json:"kind"`
	Uses []string `json:"uses"`

	source string // the image to copy into a mirror: Original (or Image) after overrides
}

// ImagesReport lists every image the app pulls.
type ImagesReport struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	Registry  string `json:"registry,omitempty"`
	// PullSecrets are spec.images.pullSecrets: the Secrets the cluster pulls with.
	PullSecrets []config.PullSecret `json:"pullSecrets,omitempty"`
	Images      []ImageEntry        `json:"images"`
	// Warnings are about the app directory (a secrets.yaml others may read).
	Warnings []string `json:"-"`
}

// ListImages renders the app in memory (nothing is written; no generate needed) and lists
// every image it pulls: pod-spec images, the images its controllers pull at run time, and
// those of kfdeploy test; rewritten by spec.images.
func ListImages(ctx context.Context, appDir string) (*ImagesReport, error) {
	a, err := config.Load(appDir)
	if err != nil {
		return nil, err
	}
	store, err := secrets.Load(appDir)
	if err != nil {
		return nil, err
	}
	ra, err := renderImages(ctx, a, appDir, store, true)
	if err != nil {
		return nil, err
	}
	rw, err := a.Spec.Images.Rewriter()
	if err != nil {
		return nil, err
	}
	rep := &ImagesReport{App: a.Metadata.Name, Namespace: a.Spec.Namespace, Registry: rw.Mirror(), Images: []ImageEntry{}, Warnings: store.Warnings()}
	if a.Spec.Images != nil {
		rep.PullSecrets = a.Spec.Images.PullSecrets
	}
	byKey := map[string]*ImageEntry{}
	original := map[string]string{} // rewritten → as the component names it
	for _, from := range slices.Sorted(maps.Keys(ra.table)) {
		if _, seen := original[ra.table[from]]; !seen {
			original[ra.table[from]] = from
		}
	}
	add := func(component, kind, image, use string) error {
		key := component + "\x00" + kind + "\x00" + image
		e, ok := byKey[key]
		if !ok {
			e = &ImageEntry{Image: image, Component: component, Kind: kind}
			if from, ok := original[image]; ok && from != image {
				e.Original = from
			}
			src := image
			if e.Original != "" {
				src = e.Original
			}
			if src, err = rw.Source(src); err != nil {
				return err
			}
			e.source = src
			byKey[key] = e
		}
		e.Uses = append(e.Uses, use)
		return nil
	}
	order := map[string]int{}
	for i, c := range a.Spec.Components {
		order[c.Name] = i
		for _, o := range ra.objs[c.Name] {
			id := manifest.IDOf(o)
			err := images.PodImages(o.Object, func(ct images.Container) (string, error) {
				return ct.Image, add(c.Name, images.Workload, ct.Image, fmt.Sprintf("%s/%s %s %s", id.Kind, id.Name, containerNoun(ct.Field), ct.Name))
			})
			if err != nil {
				return nil, err
			}
		}
		for _, ri := range ra.runtime[c.Name] {
			if err := add(c.Name, images.Runtime, ri.Image, ri.Use); err != nil {
				return nil, err
			}
		}
		if img, ok := ra.tests[c.Name]; ok {
			if err := add(c.Name, images.Test, img, "kfdeploy test workload"); err != nil {
				return nil, err
			}
		}
	}
	kindOrder := map[string]int{images.Workload: 0, images.Runtime: 1, images.Test: 2}
	for _, e := range byKey {
		slices.Sort(e.Uses)
		e.Uses = slices.Compact(e.Uses)
		rep.Images = append(rep.Images, *e)
	}
	sort.Slice(rep.Images, func(i, j int) bool {
		x, y := rep.Images[i], rep.Images[j]
		if order[x.Component] != order[y.Component] {
			return order[x.Component] < order[y.Component]
		}
		if x.Kind != y.Kind {
			return kindOrder[x.Kind] < kindOrder[y.Kind]
		}
		return x.Image < y.Image
	})
	return rep, nil
}

// MirrorCopies lists the copies that put every image of the report into the mirror dest:
// each image as the components name it after spec.images.overrides, to dest/<path>.
func (r *ImagesReport) MirrorCopies(dest string) ([]images.Copy, error) {
	var sources []string
	for _, e := range r.Images {
		sources = append(sources, e.source)
	}
	return images.Copies(dest, sources)
}

// MirrorLogin is what copying into the mirror dest needs first when the app pulls with a login
// (spec.images.pullSecrets): lines for the script's header that name the pull secrets, and a
// shell line that stops the script before its first copy unless skopeo is logged in to dest's
// registry. An app without pull secrets pulls anonymously: nothing is needed. No credential is
// read or printed.
func (r *ImagesReport) MirrorLogin(dest string) (header, prelude []string, err error) {
	if len(r.PullSecrets) == 0 {
		return nil, nil, nil
	}
	host, err := images.MirrorHost(dest)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, ps := range r.PullSecrets {
		if ps.File != "" {
			names = append(names, fmt.Sprintf("%s (from docker config %s)", ps.Name, ps.File))
		} else {
			names = append(names, ps.Name)
		}
	}
	header = []string{
		fmt.Sprintf("The cluster pulls with pull secret(s) %s of namespace %s (spec.images.pullSecrets);", strings.Join(names, ", "), r.Namespace),
		fmt.Sprintf("the copy pushes: log in to %s with an account that may push (skopeo login %s) before running this.", host, host),
	}
	return header, []string{images.LoginCheck(host, "an account that may push, not only pull")}, nil
}

func containerNoun(field string) string {
	switch field {
	case "initContainers":
		return "init container"
	case "ephemeralContainers":
		return "ephemeral container"
	}
	return "container"
}

// renderedApp is an app rendered with its images as spec.images rewrites them.
type renderedApp struct {
	objs    map[string][]*unstructured.Unstructured
	runtime map[string][]render.RuntimeImage
	tests   map[string]string // component → image of its kfdeploy test workload
	table   map[string]string // image as named → as pulled; nil when nothing is rewritten
}

// renderApp renders the app for generate, its images rewritten by spec.images.
func renderApp(ctx context.Context, a *config.App, appDir string, store *secrets.Store) (map[string][]*unstructured.Unstructured, error) {
	if a.Spec.Images == nil {
		return renderAll(ctx, a, appDir, store, nil)
	}
	ra, err := renderImages(ctx, a, appDir, store, false)
	if err != nil {
		return nil, err
	}
	return ra.objs, nil
}

// renderImages renders the app as its components name the images, makes the image table of
// spec.images from every image found (pod specs, runtime images, test images), and, when it
// rewrites anything, renders again with it and checks that every image was rewritten.
func renderImages(ctx context.Context, a *config.App, appDir string, store *secrets.Store, list bool) (*renderedApp, error) {
	rw, err := a.Spec.Images.Rewriter()
	if err != nil {
		return nil, fmt.Errorf("%s: spec.images: %w", appFile(appDir), err)
	}
	objs, err := renderAll(ctx, a, appDir, store, nil)
	if err != nil {
		return nil, err
	}
	ra := &renderedApp{objs: objs}
	if !rw.Enabled() && !list {
		return ra, nil
	}
	r := render.New(jsonnet.Library, appDir)
	if ra.runtime, err = runtimeImages(a, r); err != nil {
		return nil, err
	}
	testOpts := TestRunOptions(a, TestOptions{})
	ra.tests = smoketest.WorkloadImages(testOpts)
	if !rw.Enabled() {
		return ra, nil
	}

	var all []string
	named := map[string][]string{} // image → components naming it, for collision messages
	note := func(component, image string) {
		all = append(all, image)
		if !slices.Contains(named[image], component) {
			named[image] = append(named[image], component)
		}
	}
	for _, c := range a.Spec.Components {
		for _, o := range ra.objs[c.Name] {
			_ = images.PodImages(o.Object, func(ct images.Container) (string, error) {
				note(c.Name, ct.Image)
				return ct.Image, nil
			})
		}
		for _, ri := range ra.runtime[c.Name] {
			note(c.Name, ri.Image)
		}
		if img, ok := ra.tests[c.Name]; ok {
			note(c.Name, img)
		}
	}
	ra.table, err = rw.Plan(all)
	if err != nil {
		return nil, describePlanError(appDir, a.Spec.Images, named, err)
	}
	if err := unusedOverrides(appDir, a.Spec.Images, all); err != nil {
		return nil, err
	}

	if ra.objs, err = renderAll(ctx, a, appDir, store, ra.table); err != nil {
		return nil, err
	}
	if ra.runtime, err = runtimeImages(a, r.WithImages(ra.table)); err != nil {
		return nil, err
	}
	for c, img := range ra.tests {
		ra.tests[c] = ra.table[img]
	}
	rewritten := map[string]bool{}
	for _, to := range ra.table {
		rewritten[to] = true
	}
	for _, c := range a.Spec.Components {
		for _, ri := range ra.runtime[c.Name] {
			if !rewritten[ri.Image] {
				return nil, fmt.Errorf("component %s: runtime image %s (%s) is not rewritten by spec.images: the component must take it from a parameter or from kfdeploy/images.libsonnet", c.Name, ri.Image, ri.Use)
			}
		}
	}
	return ra, nil
}

// runtimeImages evaluates every component's runtime images, with the app's parameters.
func runtimeImages(a *config.App, r *render.Renderer) (map[string][]render.RuntimeImage, error) {
	gateway, err := render.GatewayOf(a.ComponentNames())
	if err != nil {
		return nil, err
	}
	out := map[string][]render.RuntimeImage{}
	var errs []error
	for _, c := range a.Spec.Components {
		env := render.Env{App: a.Metadata.Name, Namespace: a.Spec.Namespace, Platform: a.Spec.Platform, Gateway: gateway}
		list, err := r.RuntimeImages(c.Name, c.Params, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[c.Name] = list
	}
	return out, errors.Join(errs...)
}

// rewriteTestImages sets the images of kfdeploy test's workloads as spec.images rewrites them.
func rewriteTestImages(a *config.App, opts *smoketest.Options) error {
	rw, err := a.Spec.Images.Rewriter()
	if err != nil || !rw.Enabled() {
		return err
	}
	out := map[string]string{}
	for _, w := range []string{"tfjob", "workflow", "experiment"} {
		img, err := rw.Rewrite(opts.ImageOf(w))
		if err != nil {
			return fmt.Errorf("image of the %s workload: %w", w, err)
		}
		out[w] = img
	}
	opts.Images = out
	return nil
}

// describePlanError names the line of app.yaml and the components of colliding images.
func describePlanError(appDir string, im *config.Images, named map[string][]string, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	// One line, however many: each collision names both images and their components.
	var msgs []string
	for _, e := range list {
		var c *images.CollisionError
		if !errors.As(e, &c) {
			msgs = append(msgs, e.Error())
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s (component %s) and %s (component %s) would both be pulled as %s",
			c.A, strings.Join(named[c.A], ", "), c.B, strings.Join(named[c.B], ", "), c.Into))
	}
	return fmt.Errorf("%s:%d: spec.images.registry %s: %s: add an override for one of them to spec.images.overrides",
		appFile(appDir), im.Line("registry"), im.Registry, strings.Join(msgs, "; "))
}

// unusedOverrides refuses an override that matches no image of the app: a misspelt image
// would otherwise be pulled from its original registry, which an air-gapped cluster cannot reach.
func unusedOverrides(appDir string, im *config.Images, used []string) error {
	seen := map[string]bool{}
	for _, img := range used {
		if n, err := images.Normalize(img); err == nil {
			seen[n] = true
		}
	}
	for _, key := range im.OverrideKeys() {
		if n, err := images.Normalize(key); err == nil && !seen[n] {
			return fmt.Errorf("%s:%d: spec.images.overrides: no component of the app uses image %s: correct it or remove the override ('kfdeploy images' lists the images, without spec.images)",
				appFile(appDir), im.Line(key), key)
		}
	}
	return nil
}

func appFile(appDir string) string { return filepath.Join(appDir, config.FileName) }
