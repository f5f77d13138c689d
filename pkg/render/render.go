// Package render turns components (jsonnet templates or plain YAML) and their parameters into
// Kubernetes objects. It never talks to a cluster.
package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-jsonnet"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Env is what every component learns about the app it is rendered for.
type Env struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	Platform  string `json:"platform"`
	// Secrets maps each secret the component declares to the placeholder that stands for its
	// value in manifests; apply replaces it with the stored value.
	Secrets map[string]string `json:"secrets"`
	// ImagePullSecrets name the docker-registry Secrets of the namespace (spec.images.pullSecrets)
	// that pods pull their images with. Render adds them to every pod spec and ServiceAccount of
	// the namespace itself (pull.go); a component passes them on to the pods its controllers
	// start (workflow defaults, spawner, suggestion services).
	ImagePullSecrets []string `json:"imagePullSecrets"`
	// Gateway is which gateway the app routes its UIs through (GatewayOf): components render
	// HTTPRoutes for GatewayAPI (k.libsonnet, httpRoutes) besides the Mappings they always carry.
	Gateway string `json:"gateway"`
}

// The gateways an app may have (Env.Gateway): the component that provides it decides.
const (
	GatewayNone       = ""
	GatewayAmbassador = "ambassador"  // component ambassador: Emissary, Mappings on Services
	GatewayAPI        = "gateway-api" // component gateway: Traefik, Gateway API HTTPRoutes
)

// gatewayComponents maps each gateway component to the Env.Gateway it provides.
var gatewayComponents = map[string]string{"ambassador": GatewayAmbassador, "gateway": GatewayAPI}

// GatewayOf is the gateway of an app with these components: an app routes through at most one,
// since both would claim the same paths with different sign-ins.
func GatewayOf(components []string) (string, error) {
	var found []string
	gw := GatewayNone
	for _, c := range components {
		if g, ok := gatewayComponents[c]; ok {
			found = append(found, c)
			gw = g
		}
	}
	if len(found) > 1 {
		return "", fmt.Errorf("components %s are each a gateway for the same UIs: an app has at most one (remove all but one from app.yaml)", strings.Join(found, " and "))
	}
	return gw, nil
}

// Param describes one parameter of a component.
type Param struct {
	Name        string `json:"name"`
	Default     any    `json:"default"`
	Description string `json:"description"`
}

// Info describes a component: what it deploys and which parameters it takes.
type Info struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Source      string            `json:"source"` // "builtin", or the path of the app's own component
	Params      []Param           `json:"params"`
	Secrets     map[string]string `json:"secrets,omitempty"` // name → description
	plainYAML   bool
	entry       string // import path of the jsonnet entry, or the YAML directory
}

// Renderer renders the built-in library and an app's own components.
type Renderer struct {
	library fs.FS
	appDir  string // "" when rendering the library alone
	// images maps images to what the cluster pulls instead (WithImages); nil: as written.
	images map[string]string
}

// New returns a Renderer over the embedded library and, when appDir is set, the app's
// components in appDir/components, which take precedence over built-in ones of the same name.
func New(library fs.FS, appDir string) *Renderer {
	return &Renderer{library: library, appDir: appDir}
}

// AppComponentsDir is where an app keeps its own components.
func AppComponentsDir(appDir string) string { return filepath.Join(appDir, "components") }

func (r *Renderer) vm() *jsonnet.VM {
	vm := jsonnet.MakeVM()
	var search []string
	strip := ""
	if r.appDir != "" {
		search = []string{filepath.Join(r.appDir, "lib"), AppComponentsDir(r.appDir)}
		if abs, err := filepath.Abs(r.appDir); err == nil {
			strip = abs + string(filepath.Separator)
		}
	}
	imp := newImporter(r.library, search)
	imp.images = r.images
	vm.Importer(imp)
	vm.ErrorFormatter = oneLineErrors{stripPrefix: strip}
	return vm
}

// Builtin lists the names of the built-in components, sorted.
func (r *Renderer) Builtin() ([]string, error) {
	entries, err := fs.ReadDir(r.library, "components")
	if err != nil {
		return nil, fmt.Errorf("read built-in library: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch {
		case e.IsDir():
			if _, err := fs.Stat(r.library, path.Join("components", e.Name(), "main.jsonnet")); err == nil {
				names = append(names, e.Name())
			}
		case strings.HasSuffix(e.Name(), ".jsonnet"):
			names = append(names, strings.TrimSuffix(e.Name(), ".jsonnet"))
		}
	}
	sort.Strings(names)
	return names, nil
}

// locate finds a component: the app's components/NAME.jsonnet, components/NAME/main.jsonnet or
// a directory components/NAME of YAML files, then the built-in library.
func (r *Renderer) locate(name string) (Info, error) {
	if r.appDir != "" {
		dir, err := filepath.Abs(AppComponentsDir(r.appDir))
		if err != nil {
			return Info{}, fmt.Errorf("component %s: %w", name, err)
		}
		for _, p := range []string{filepath.Join(dir, name+".jsonnet"), filepath.Join(dir, name, "main.jsonnet")} {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return Info{Name: name, Source: p, entry: p}, nil
			}
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.IsDir() {
			p := filepath.Join(dir, name)
			return Info{Name: name, Source: p, entry: p, plainYAML: true}, nil
		}
	}
	for _, p := range []string{path.Join("components", name+".jsonnet"), path.Join("components", name, "main.jsonnet")} {
		if _, err := fs.Stat(r.library, p); err == nil {
			return Info{Name: name, Source: "builtin", entry: builtinRoot + p}, nil
		}
	}
	known, _ := r.Builtin()
	return Info{}, fmt.Errorf("component %q not found: not in %s and not built in (built-in: %s; see 'kfdeploy components')",
		name, filepath.Join("components", name+".jsonnet"), strings.Join(known, ", "))
}

// metaSnippet extracts what Describe needs without rendering.
const metaSnippet = `
local c = import %q;
if std.type(c) != 'object' || !std.objectHasAll(c, 'render') then
  error 'a component must evaluate to an object with a render(params, env) function'
else {
  description: std.get(c, 'description', ''),
  params: { [k]: { default: std.get(c.params[k], 'default', null), description: std.get(c.params[k], 'description', '') } for k in std.objectFields(std.get(c, 'params', {})) },
  secrets: { [k]: std.get(c.secrets[k], 'description', '') for k in std.objectFields(std.get(c, 'secrets', {})) },
}
`

// Describe returns a component's description, parameters and declared secrets.
func (r *Renderer) Describe(name string) (Info, error) {
	info, err := r.locate(name)
	if err != nil {
		return Info{}, err
	}
	if info.plainYAML {
		info.Description = "plain YAML from " + filepath.Join("components", name)
		return info, nil
	}
	out, err := r.vm().EvaluateAnonymousSnippet("<component "+name+">", fmt.Sprintf(metaSnippet, info.entry))
	if err != nil {
		return Info{}, fmt.Errorf("component %s: %w", name, err)
	}
	var meta struct {
		Description string `json:"description"`
		Params      map[string]struct {
			Default     any    `json:"default"`
			Description string `json:"description"`
		} `json:"params"`
		Secrets map[string]string `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(out), &meta); err != nil {
		return Info{}, fmt.Errorf("component %s: %w", name, err)
	}
	info.Description = meta.Description
	info.Secrets = meta.Secrets
	for k, p := range meta.Params {
		info.Params = append(info.Params, Param{Name: k, Default: p.Default, Description: p.Description})
	}
	sort.Slice(info.Params, func(i, j int) bool { return info.Params[i].Name < info.Params[j].Name })
	return info, nil
}

// PlainYAML reports whether the component is a directory of YAML files, which takes no
// parameters.
func (info Info) PlainYAML() bool { return info.plainYAML }

// MergeParams lays the given values over the component's defaults, rejecting unknown names and
// values whose JSON type differs from a non-null default.
func (info Info) MergeParams(values map[string]any) (map[string]any, error) {
	merged := make(map[string]any, len(info.Params))
	known := make([]string, 0, len(info.Params))
	defaults := map[string]any{}
	for _, p := range info.Params {
		merged[p.Name] = p.Default
		defaults[p.Name] = p.Default
		known = append(known, p.Name)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(values)) {
		def, ok := defaults[k]
		if !ok {
			errs = append(errs, fmt.Errorf("component %s has no parameter %q (parameters: %s)", info.Name, k, strings.Join(known, ", ")))
			continue
		}
		v, err := normalize(values[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("parameter %s.%s: %w", info.Name, k, err))
			continue
		}
		if def != nil && v != nil && jsonType(def) != jsonType(v) {
			errs = append(errs, fmt.Errorf("parameter %s.%s must be %s (default %s), got %s %s",
				info.Name, k, withArticle(jsonType(def)), JSONText(def), jsonType(v), JSONText(v)))
			continue
		}
		merged[k] = v
	}
	return merged, errors.Join(errs...)
}

// Render evaluates a component with the given parameters (over its defaults) and returns its
// objects in a stable order.
func (r *Renderer) Render(name string, params map[string]any, env Env) ([]*unstructured.Unstructured, error) {
	info, err := r.Describe(name)
	if err != nil {
		return nil, err
	}
	if info.plainYAML {
		if len(params) > 0 {
			return nil, fmt.Errorf("component %s is plain YAML and takes no parameters", name)
		}
		objs, err := readYAMLDir(info.entry)
		if err != nil {
			return nil, err
		}
		if err := r.rewritePodImages(name, objs); err != nil {
			return nil, err
		}
		addPullSecrets(objs, env)
		return objs, nil
	}
	out, err := r.evaluate(info, params, env, "render")
	if err != nil {
		return nil, err
	}
	var value any
	if err := json.Unmarshal([]byte(out), &value); err != nil {
		return nil, fmt.Errorf("component %s: %w", name, err)
	}
	var objs []*unstructured.Unstructured
	if err := collect(value, "", &objs); err != nil {
		return nil, fmt.Errorf("component %s rendered %w", name, err)
	}
	for _, o := range objs {
		if err := manifest.Validate(o); err != nil {
			return nil, fmt.Errorf("component %s rendered an invalid object: %w", name, err)
		}
	}
	if err := r.rewritePodImages(name, objs); err != nil {
		return nil, err
	}
	addPullSecrets(objs, env)
	manifest.Sort(objs)
	return objs, nil
}

// evaluate calls the component's function fn(params, env) with the parameters laid over its
// defaults (and their images rewritten, see WithImages) and returns the JSON it evaluates to.
func (r *Renderer) evaluate(info Info, params map[string]any, env Env, fn string) (string, error) {
	name := info.Name
	merged, err := info.MergeParams(params)
	if err != nil {
		return "", err
	}
	paramsJSON, err := json.Marshal(r.rewriteParams(merged))
	if err != nil {
		return "", fmt.Errorf("component %s: encode parameters: %w", name, err)
	}
	if env.Secrets == nil {
		env.Secrets = map[string]string{}
	}
	if env.ImagePullSecrets == nil {
		env.ImagePullSecrets = []string{}
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("component %s: encode env: %w", name, err)
	}
	vm := r.vm()
	vm.TLACode("params", string(paramsJSON))
	vm.TLACode("env", string(envJSON))
	out, err := vm.EvaluateAnonymousSnippet("<component "+name+">",
		fmt.Sprintf("function(params, env) local c = (import %q); if std.objectHasAll(c, %q) then c[%q](params, env) else []", info.entry, fn, fn))
	if err != nil {
		return "", fmt.Errorf("component %s: %w", name, err)
	}
	return out, nil
}

// collect flattens what a component returned: an object with apiVersion and kind is a
// Kubernetes object; other objects and arrays are walked (keys in sorted order); nulls skipped.
func collect(v any, at string, out *[]*unstructured.Unstructured) error {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		for i, e := range t {
			if err := collect(e, fmt.Sprintf("%s[%d]", at, i), out); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if _, ok := t["kind"]; ok {
			if _, ok := t["apiVersion"]; ok {
				*out = append(*out, &unstructured.Unstructured{Object: t})
				return nil
			}
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := collect(t[k], at+"."+k, out); err != nil {
				return err
			}
		}
		return nil
	default:
		if at == "" {
			at = "the top level"
		}
		return fmt.Errorf("a %s at %s where Kubernetes objects (with apiVersion and kind) were expected", jsonType(v), at)
	}
}

func readYAMLDir(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read component %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read component file: %w", err)
		}
		docs, err := manifest.Decode(p, data)
		if err != nil {
			return nil, err
		}
		objs = append(objs, docs...)
	}
	manifest.Sort(objs)
	return objs, nil
}

// normalize passes a value through JSON so that YAML's ints and JSON's float64 compare alike.
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value %v cannot be expressed in JSON: %w", v, err)
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, int, int64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return reflect.TypeOf(v).String()
}

func withArticle(noun string) string {
	if strings.ContainsAny(noun[:1], "aeiou") {
		return "an " + noun
	}
	return "a " + noun
}

// JSONText shows a value as JSON, the type system of parameters: "" and null differ.
func JSONText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
