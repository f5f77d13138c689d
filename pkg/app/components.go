package app

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/fsutil"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/render"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// This file holds what `kfdeploy components` and `kfdeploy param` do: the component catalogue
// (the built-in library plus an app's own components) and the editing of parameters in
// app.yaml.

// Parameter sources, as `param list` shows them.
const (
	SourceApp     = "app.yaml"
	SourceDefault = "default"
)

// ComponentSummary is one row of `kfdeploy components`.
type ComponentSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Source is "builtin", or the app-relative path of the app's own component.
	Source string `json:"source"`
	// App marks the app's own components; OverridesBuiltin those that replace a built-in one.
	App              bool     `json:"app"`
	OverridesBuiltin bool     `json:"overridesBuiltin,omitempty"`
	Images           []string `json:"images"`
	// Error says why the component could not be described or rendered at its defaults; the
	// listing goes on without it so that one broken component does not hide the others.
	Error string `json:"error,omitempty"`
}

// ComponentDetail is what `kfdeploy components show` prints.
type ComponentDetail struct {
	ComponentSummary
	Params  []render.Param `json:"params"`
	Secrets []SecretInfo   `json:"secrets"`
}

// SecretInfo names a generated secret a component declares; its value is never shown.
type SecretInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// catalogue is the set of components visible from a directory.
type catalogue struct {
	r       *render.Renderer
	appDir  string // "" outside an app
	builtin []string
	own     []string // the app's components/ entries, sorted
}

// openCatalogue lists the built-in components and, when dir holds an app.yaml, the app's own.
func openCatalogue(dir string) (*catalogue, error) {
	c := &catalogue{}
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, config.FileName)); err == nil {
			c.appDir = dir
		}
	}
	c.r = render.New(jsonnet.Library, c.appDir)
	var err error
	if c.builtin, err = c.r.Builtin(); err != nil {
		return nil, err
	}
	if c.appDir != "" {
		if c.own, err = appComponents(c.appDir); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// appComponents lists what render finds in APP_DIR/components: NAME.jsonnet files and NAME/
// directories (jsonnet with main.jsonnet, or plain YAML).
func appComponents(appDir string) ([]string, error) {
	dir := render.AppComponentsDir(appDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the app's components: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), "."):
		case e.IsDir():
			names = append(names, e.Name())
		case strings.HasSuffix(e.Name(), ".jsonnet"):
			names = append(names, strings.TrimSuffix(e.Name(), ".jsonnet"))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (c *catalogue) names() []string {
	seen := map[string]bool{}
	var all []string
	for _, n := range append(append([]string{}, c.builtin...), c.own...) {
		if !seen[n] {
			seen[n] = true
			all = append(all, n)
		}
	}
	sort.Strings(all)
	return all
}

func (c *catalogue) has(list []string, name string) bool {
	i := sort.SearchStrings(list, name)
	return i < len(list) && list[i] == name
}

// unknown is the error for a name that is neither built in nor the app's own.
func (c *catalogue) unknown(name string) error {
	where := "built-in components"
	if c.appDir != "" {
		where = "built-in components and the app's components/"
	}
	return fmt.Errorf("unknown component %q: not among the %s; known components: %s (see 'kfdeploy components')",
		name, where, strings.Join(c.names(), ", "))
}

// summarize describes a component and renders it at its defaults to find its images.
func (c *catalogue) summarize(name string) (ComponentSummary, render.Info, error) {
	s := ComponentSummary{Name: name, Source: "builtin", Images: []string{}}
	if c.has(c.own, name) {
		s.App = true
		s.OverridesBuiltin = c.has(c.builtin, name)
		s.Source = c.ownSource(name)
	}
	info, err := c.r.Describe(name)
	if err != nil {
		return s, info, err
	}
	s.Description = info.Description
	env := render.Env{App: "x", Namespace: config.DefaultNamespace, Platform: config.PlatformNone, Secrets: map[string]string{}}
	for secret := range info.Secrets {
		env.Secrets[secret] = secrets.Placeholder(name, secret)
	}
	objs, err := c.r.Render(name, nil, env)
	if err != nil {
		return s, info, err
	}
	s.Images = Images(objs)
	return s, info, nil
}

// ownSource is the app-relative path of the app's own component, found in render's order
// (NAME.jsonnet, then the NAME/ directory); it is known even when the component is broken.
func (c *catalogue) ownSource(name string) string {
	rel := filepath.Join("components", name+".jsonnet")
	if st, err := os.Stat(filepath.Join(c.appDir, rel)); err == nil && !st.IsDir() {
		return rel
	}
	return filepath.Join("components", name)
}

// Components lists the built-in components and, when dir holds an app, the app's own, each with
// the images it deploys at its default parameters.
func Components(dir string) ([]ComponentSummary, error) {
	c, err := openCatalogue(dir)
	if err != nil {
		return nil, err
	}
	names := c.names()
	out := make([]ComponentSummary, len(names))
	// Each render evaluates the whole library afresh; doing them side by side keeps the
	// listing quick as the library grows.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, name := range names {
		g.Go(func() error {
			s, _, err := c.summarize(name)
			if err != nil {
				s.Error = problem(name, err)
			}
			out[i] = s
			return nil
		})
	}
	_ = g.Wait()
	return out, nil
}

// ShowComponent describes one component: its parameters with defaults, its generated secrets
// (names only) and its images.
func ShowComponent(dir, name string) (*ComponentDetail, error) {
	c, err := openCatalogue(dir)
	if err != nil {
		return nil, err
	}
	if !c.has(c.builtin, name) && !c.has(c.own, name) {
		return nil, c.unknown(name)
	}
	s, info, err := c.summarize(name)
	if info.Name == "" {
		// Not even described: there is nothing to show.
		return nil, err
	}
	if err != nil {
		s.Error = problem(name, err)
	}
	d := &ComponentDetail{ComponentSummary: s, Params: info.Params, Secrets: []SecretInfo{}}
	if d.Params == nil {
		d.Params = []render.Param{}
	}
	for _, k := range slices.Sorted(maps.Keys(info.Secrets)) {
		d.Secrets = append(d.Secrets, SecretInfo{Name: k, Description: info.Secrets[k]})
	}
	return d, nil
}

// problem shortens a render error for a row that already names the component: without the
// "component NAME: " prefix and without the location inside the evaluation snippet (which an
// assert reports), which mean nothing to users; locations in component files stay.
func problem(name string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "component "+name+": ")
	if rest, ok := strings.CutPrefix(msg, "<component "+name+">:"); ok {
		if _, after, found := strings.Cut(rest, ": "); found {
			msg = after
		}
	}
	return msg
}

// Images returns the container and init container images of the objects' pod templates,
// deduplicated and sorted.
func Images(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		path := manifest.PodSpecPath(o.GroupVersionKind().GroupKind())
		if path == nil {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			containers, _, _ := unstructured.NestedSlice(o.Object, append(path, field)...)
			for _, c := range containers {
				if m, ok := c.(map[string]any); ok {
					if img, ok := m["image"].(string); ok && img != "" {
						seen[img] = true
					}
				}
			}
		}
	}
	images := make([]string, 0, len(seen))
	for img := range seen {
		images = append(images, img)
	}
	sort.Strings(images)
	return images
}

// ParamValue is one row of `kfdeploy param list`.
type ParamValue struct {
	Component string `json:"component"`
	Param     string `json:"param"`
	Value     any    `json:"value"`
	Default   any    `json:"default"`
	// Source is "app.yaml" or "default"; Unknown marks an app.yaml entry that the component
	// does not declare (generate rejects it).
	Source  string `json:"source"`
	Unknown bool   `json:"unknown,omitempty"`
}

// ListParams returns every parameter of the app's components (or of one of them), the values of
// app.yaml laid over the defaults.
func ListParams(appDir, component string) ([]ParamValue, error) {
	a, err := config.Load(appDir)
	if err != nil {
		return nil, err
	}
	comps := a.Spec.Components
	if component != "" {
		c, err := appComponent(a, appDir, component)
		if err != nil {
			return nil, err
		}
		comps = []config.Component{c}
	}
	r := render.New(jsonnet.Library, appDir)
	out := []ParamValue{}
	for _, c := range comps {
		info, err := r.Describe(c.Name)
		if err != nil {
			return nil, err
		}
		declared := map[string]bool{}
		for _, p := range info.Params {
			declared[p.Name] = true
			pv := ParamValue{Component: c.Name, Param: p.Name, Value: p.Default, Default: p.Default, Source: SourceDefault}
			if v, ok := c.Params[p.Name]; ok {
				pv.Value, pv.Source = v, SourceApp
			}
			out = append(out, pv)
		}
		for _, k := range slices.Sorted(maps.Keys(c.Params)) {
			if !declared[k] {
				out = append(out, ParamValue{Component: c.Name, Param: k, Value: c.Params[k], Source: SourceApp, Unknown: true})
			}
		}
	}
	return out, nil
}

// appComponent finds a component in app.yaml; the error names the ones it has.
func appComponent(a *config.App, appDir, name string) (config.Component, error) {
	for _, c := range a.Spec.Components {
		if c.Name == name {
			return c, nil
		}
	}
	return config.Component{}, fmt.Errorf("component %q is not in %s (components: %s): add it to spec.components first",
		name, filepath.Join(appDir, config.FileName), strings.Join(a.ComponentNames(), ", "))
}

// ParamChange is the outcome of `param set` and `param unset`.
type ParamChange struct {
	Component string
	Param     string
	Value     any // in effect now
	Source    string
	Previous  any
	// PreviousSource is where Previous came from: "app.yaml" or "default".
	PreviousSource string
	Default        any
	// Changed is false when app.yaml already said so; it was not rewritten then.
	Changed bool
}

// paramEdit is app.yaml opened for a parameter edit of one component.
type paramEdit struct {
	path string
	data []byte
	doc  *config.Document
	comp config.Component
	info render.Info
}

func openParamEdit(appDir, component string) (*paramEdit, error) {
	path := filepath.Join(appDir, config.FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, err = config.Load(appDir) // its message says what to do
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read app: %w", err)
	}
	// Only a valid app is edited: the edit must not be blamed for an error it did not make.
	a, err := config.Parse(path, data)
	if err != nil {
		return nil, err
	}
	comp, err := appComponent(a, appDir, component)
	if err != nil {
		return nil, err
	}
	info, err := render.New(jsonnet.Library, appDir).Describe(component)
	if err != nil {
		return nil, err
	}
	doc, err := config.ParseDocument(path, data)
	if err != nil {
		return nil, err
	}
	return &paramEdit{path: path, data: data, doc: doc, comp: comp, info: info}, nil
}

func (e *paramEdit) param(key string) (render.Param, bool) {
	for _, p := range e.info.Params {
		if p.Name == key {
			return p, true
		}
	}
	return render.Param{}, false
}

// save writes the edited document after checking that it is still a valid app; app.yaml is
// replaced atomically, so a failure leaves it as it was.
func (e *paramEdit) save() error {
	out, err := e.doc.Bytes()
	if err != nil {
		return err
	}
	if _, err := config.Parse(e.path, out); err != nil {
		return fmt.Errorf("the edited app.yaml would not load (%w); app.yaml was left unchanged", err)
	}
	perm := os.FileMode(0o644)
	if st, err := os.Stat(e.path); err == nil {
		perm = st.Mode().Perm()
	}
	return fsutil.WriteFile(e.path, out, perm)
}

// SetParam sets a component's parameter in app.yaml. The value is read as YAML (see
// config.ParseParamValue) and checked against the component's parameters as generate checks
// it; on any error app.yaml is not touched.
func SetParam(appDir, component, key, value string) (*ParamChange, error) {
	e, err := openParamEdit(appDir, component)
	if err != nil {
		return nil, err
	}
	if e.info.PlainYAML() {
		return nil, fmt.Errorf("component %s is plain YAML (%s) and takes no parameters", component, e.info.Source)
	}
	p, ok := e.param(key)
	if !ok {
		// MergeParams words the error, with the list of parameters.
		_, err := e.info.MergeParams(map[string]any{key: nil})
		return nil, fmt.Errorf("param set %s %s: %w", component, key, err)
	}
	node, v, err := config.ParseParamValue(value)
	if err != nil {
		return nil, fmt.Errorf("param set %s %s: %w", component, key, err)
	}
	if _, err := e.info.MergeParams(map[string]any{key: v}); err != nil {
		return nil, fmt.Errorf("param set %s %s: %w (VALUE is read as YAML: 1 is a number, '\"1\"' a string, true a boolean, [a, b] a list)", component, key, err)
	}
	ch := &ParamChange{Component: component, Param: key, Value: v, Source: SourceApp, Default: p.Default,
		Previous: p.Default, PreviousSource: SourceDefault, Changed: true}
	if prev, ok := e.comp.Params[key]; ok {
		ch.Previous, ch.PreviousSource = prev, SourceApp
		ch.Changed = !reflect.DeepEqual(prev, v)
	}
	if !ch.Changed {
		return ch, nil
	}
	if err := e.doc.SetParam(component, key, node); err != nil {
		return nil, err
	}
	if err := e.save(); err != nil {
		return nil, err
	}
	return ch, nil
}

// UnsetParam removes a component's parameter from app.yaml, so that its default applies. A
// parameter the component no longer declares can be removed too: that is how to fix it.
func UnsetParam(appDir, component, key string) (*ParamChange, error) {
	e, err := openParamEdit(appDir, component)
	if err != nil {
		return nil, err
	}
	p, declared := e.param(key)
	prev, set := e.comp.Params[key]
	if !declared && !set {
		_, err := e.info.MergeParams(map[string]any{key: nil})
		return nil, fmt.Errorf("param unset %s %s: %w", component, key, err)
	}
	ch := &ParamChange{Component: component, Param: key, Value: p.Default, Source: SourceDefault, Default: p.Default,
		Previous: p.Default, PreviousSource: SourceDefault}
	if !set {
		return ch, nil
	}
	ch.Previous, ch.PreviousSource, ch.Changed = prev, SourceApp, true
	if _, err := e.doc.UnsetParam(component, key); err != nil {
		return nil, err
	}
	if err := e.save(); err != nil {
		return nil, err
	}
	return ch, nil
}
