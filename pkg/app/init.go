package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/fsutil"
	"github.com/kfdeploy/kfdeploy/pkg/render"
)

// InitOptions are the choices of `kfdeploy init`.
type InitOptions struct {
	Dir        string
	Platform   string
	Namespace  string
	Preset     string   // a preset of jsonnet/presets.json; "" with Components set
	Components []string // overrides the preset
}

// DefaultComponents is what an app gets when neither a preset nor components are named.
var defaultComponents = []string{"core", "jupyter"}

// Presets returns the named component sets of the built-in library.
func Presets() (map[string][]string, error) {
	data, err := fs.ReadFile(jsonnet.Library, "presets.json")
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read presets: %w", err)
	}
	var presets map[string][]string
	if err := json.Unmarshal(data, &presets); err != nil {
		return nil, fmt.Errorf("built-in presets.json: %w", err)
	}
	return presets, nil
}

// Init creates the app directory with app.yaml; it refuses to touch an existing app.
func Init(opts InitOptions) (*config.App, error) {
	name := filepath.Base(filepath.Clean(opts.Dir))
	if !config.ValidName(name) {
		return nil, fmt.Errorf("app name %q (the directory name) must be a DNS label: lower case letters, digits and '-'", name)
	}
	if opts.Platform != config.PlatformNone {
		return nil, fmt.Errorf("--platform %q is not supported; use --platform none to deploy onto an existing cluster", opts.Platform)
	}
	if opts.Namespace == "" {
		opts.Namespace = config.DefaultNamespace
	}
	names, err := chooseComponents(opts)
	if err != nil {
		return nil, err
	}
	appFile := filepath.Join(opts.Dir, config.FileName)
	if _, err := os.Stat(appFile); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to overwrite an app; choose another directory or edit it", appFile)
	}
	components := make([]config.Component, len(names))
	for i, n := range names {
		components[i] = config.Component{Name: n}
	}
	app := config.New(name, opts.Platform, opts.Namespace, components)
	if err := app.Validate(); err != nil {
		return nil, err
	}
	data, err := app.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create app directory: %w", err)
	}
	header := []byte("# kfdeploy app: edit components and their params, then run 'kfdeploy generate' and 'kfdeploy apply'.\n")
	if err := fsutil.WriteFile(appFile, append(header, data...), 0o644); err != nil {
		return nil, err
	}
	return app, nil
}

func chooseComponents(opts InitOptions) ([]string, error) {
	if len(opts.Components) > 0 {
		known, err := render.New(jsonnet.Library, "").Builtin()
		if err != nil {
			return nil, err
		}
		var unknown []string
		for _, c := range opts.Components {
			if i := sort.SearchStrings(known, c); i >= len(known) || known[i] != c {
				unknown = append(unknown, c)
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("unknown components %s; built-in components: %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
		}
		return opts.Components, nil
	}
	if opts.Preset == "" {
		return defaultComponents, nil
	}
	presets, err := Presets()
	if err != nil {
		return nil, err
	}
	names, ok := presets[opts.Preset]
	if !ok {
		known := make([]string, 0, len(presets))
		for k := range presets {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown preset %q; presets: %s", opts.Preset, strings.Join(known, ", "))
	}
	return names, nil
}
