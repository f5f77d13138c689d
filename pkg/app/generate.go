// Package app owns the phases of kfdeploy — init, generate, apply, diff, delete, preflight,
// status, top nodes — as functions of a context and resolved options that the CLI and tests
// call alike. A phase sequences the work: it loads the app, connects once (kube.Connect, from
// the options' Cluster), and hands that client to the packages that do the work (pkg/kube,
// pkg/preflight, pkg/topnodes). It returns its result as data (a report); pkg/cli renders it.
// A new phase follows the same shape: XOptions in, *XReport and error out, in its own file.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/fsutil"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/render"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// ManifestsDir is where generate writes, inside the app directory.
const ManifestsDir = "manifests"

// stampFile records what a generate was made from, so apply can tell stale manifests.
const stampFile = ".kfdeploy-generated.json"

type stamp struct {
	Inputs     string   `json:"inputs"`
	Components []string `json:"components"`
}

// GenerateResult lists what generate wrote.
type GenerateResult struct {
	Dir        string
	Components []ComponentOutput
	// Warnings and Notes are what the user must hear about secrets.yaml and the certificates
	// (never a value): a readable file, names the CA may not vouch for; a new CA, a re-issue.
	Warnings []string
	Notes    []string
}

// ComponentOutput is one component's manifest file.
type ComponentOutput struct {
	Name    string
	File    string
	Objects int
}

// Generate renders every component of the app into APP_DIR/manifests/<component>.yaml. All
// components are rendered before anything is written, and the directory is swapped in whole:
// a failing render leaves the previous manifests as they were. A cancelled ctx stops between
// components (a jsonnet evaluation itself cannot be interrupted) and writes nothing.
func Generate(ctx context.Context, appDir string) (*GenerateResult, error) {
	app, err := config.Load(appDir)
	if err != nil {
		return nil, err
	}
	store, err := secrets.Load(appDir)
	if err != nil {
		return nil, err
	}
	objsByComponent, err := renderApp(ctx, app, appDir, store)
	if err != nil {
		return nil, err
	}
	warnings, notes, err := generateNotices(app, objsByComponent, store)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("generate interrupted, nothing written: %w", err)
	}
	files := map[string][]byte{}
	res := &GenerateResult{Dir: filepath.Join(appDir, ManifestsDir), Warnings: warnings, Notes: notes}
	for _, c := range app.Spec.Components {
		data, err := manifest.Encode(objsByComponent[c.Name])
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		file := c.Name + ".yaml"
		files[file] = data
		res.Components = append(res.Components, ComponentOutput{Name: c.Name, File: filepath.Join(res.Dir, file), Objects: len(objsByComponent[c.Name])})
	}
	digest, err := inputsDigest(appDir)
	if err != nil {
		return nil, err
	}
	st, err := json.MarshalIndent(stamp{Inputs: digest, Components: app.ComponentNames()}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", stampFile, err)
	}
	files[stampFile] = append(st, '\n')
	// Passwords first: manifests must never refer to a value that was not stored.
	if err := store.Save(); err != nil {
		return nil, err
	}
	if err := fsutil.ReplaceDir(res.Dir, files, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// generateNotices are what generate tells about secrets.yaml (its mode) and about each
// certificate it keeps or issues. EnsureCertificate, called again, only reports: the render
// already stored what it asks for.
func generateNotices(app *config.App, objsByComponent map[string][]*unstructured.Unstructured, store *secrets.Store) (warnings, notes []string, err error) {
	warnings = append(warnings, store.Warnings()...)
	for _, c := range app.Spec.Components {
		specs, err := certSpecs(objsByComponent[c.Name], c.Name)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range specs {
			if s.files != nil {
				continue
			}
			req := s.request
			if s.withNodes {
				req.NodeAddresses = store.StoredNodeAddresses(s.component, s.name)
			}
			out, err := store.EnsureCertificate(s.component, s.name, req)
			if err != nil {
				return nil, nil, err
			}
			w, n := certNotices(s, secretNamespace(s.secret, app.Spec.Namespace), store, out, phaseGenerate)
			warnings, notes = append(warnings, w...), append(notes, n...)
		}
	}
	return warnings, notes, nil
}

// renderAll renders each component and rejects an object that two components both define;
// images as the table maps them (nil: as the components name them, see images.go).
func renderAll(ctx context.Context, app *config.App, appDir string, store *secrets.Store, images map[string]string) (map[string][]*unstructured.Unstructured, error) {
	r := render.New(jsonnet.Library, appDir).WithImages(images)
	gateway, err := render.GatewayOf(app.ComponentNames())
	if err != nil {
		return nil, err
	}
	out := map[string][]*unstructured.Unstructured{}
	var errs []error
	for _, c := range app.Spec.Components {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("generate interrupted before component %s, nothing written: %w", c.Name, err)
		}
		info, err := r.Describe(c.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		env := render.Env{App: app.Metadata.Name, Namespace: app.Spec.Namespace, Platform: app.Spec.Platform, Secrets: map[string]string{},
			ImagePullSecrets: app.Spec.Images.PullSecretNames(), Gateway: gateway}
		for name := range info.Secrets {
			ph, err := store.Ensure(c.Name, name)
			if err != nil {
				return nil, err
			}
			env.Secrets[name] = ph
		}
		objs, err := r.Render(c.Name, c.Params, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ensureCertificates(appDir, c.Name, objs, store); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ensureHtpasswds(c.Name, objs, store); err != nil {
			errs = append(errs, err)
			continue
		}
		out[c.Name] = objs
	}
	if err := addPullSecretObjects(app, appDir, store, out); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, duplicateObjects(app, out)...)
	return out, errors.Join(errs...)
}

// duplicateObjects finds objects that two components (or one, twice) define. They are compared
// as the API server sees them, after namespace defaulting: a namespaced object rendered without
// a namespace is the same object as one rendered with the app's namespace.
func duplicateObjects(app *config.App, byComponent map[string][]*unstructured.Unstructured) []error {
	var all []*unstructured.Unstructured
	for _, c := range app.Spec.Components {
		all = append(all, byComponent[c.Name]...)
	}
	scopes := manifest.ScopesOf(all)
	type origin struct {
		component string
		namespace string // as rendered
	}
	owner := map[manifest.ID]origin{}
	var errs []error
	for _, c := range app.Spec.Components {
		for _, o := range byComponent[c.Name] {
			id := scopes.DefaultedID(o, app.Spec.Namespace)
			here := origin{component: c.Name, namespace: o.GetNamespace()}
			if prev, dup := owner[id]; dup {
				errs = append(errs, fmt.Errorf("%s is defined twice: by component %s (%s/%s.yaml, %s) and by component %s (%s/%s.yaml, %s): remove or rename one",
					id, prev.component, ManifestsDir, prev.component, renderedNamespace(prev.namespace),
					here.component, ManifestsDir, here.component, renderedNamespace(here.namespace)))
				continue
			}
			owner[id] = here
		}
	}
	return errs
}

func renderedNamespace(ns string) string {
	if ns == "" {
		return "no namespace, defaulted to the app's"
	}
	return "namespace " + ns
}

// LoadManifests reads the generated manifests in component order, refusing when app.yaml or the
// app's components changed after they were generated.
func LoadManifests(appDir string) ([]*unstructured.Unstructured, error) {
	objs, _, err := loadManifests(appDir)
	return objs, err
}

// loadManifests is LoadManifests that also names each object's file ("manifests/NAME.yaml"),
// for messages about an object.
func loadManifests(appDir string) ([]*unstructured.Unstructured, map[manifest.ID]string, error) {
	dir := filepath.Join(appDir, ManifestsDir)
	data, err := os.ReadFile(filepath.Join(dir, stampFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s has no generated manifests: run 'kfdeploy generate' first", dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read manifests: %w", err)
	}
	var st stamp
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: run 'kfdeploy generate' again", filepath.Join(dir, stampFile), err)
	}
	digest, err := inputsDigest(appDir)
	if err != nil {
		return nil, nil, err
	}
	if digest != st.Inputs {
		return nil, nil, fmt.Errorf("app.yaml or the app's components changed since the manifests were generated: run 'kfdeploy generate', review manifests/, then apply")
	}
	var objs []*unstructured.Unstructured
	files := map[manifest.ID]string{}
	for _, name := range st.Components {
		path := filepath.Join(dir, name+".yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read manifests: %w (run 'kfdeploy generate' again)", err)
		}
		docs, err := manifest.Decode(path, data)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range docs {
			files[manifest.IDOf(o)] = filepath.ToSlash(filepath.Join(ManifestsDir, name+".yaml"))
		}
		objs = append(objs, docs...)
	}
	return objs, files, nil
}

// inputsDigest hashes everything a generate depends on: app.yaml, the app's components/ and
// lib/, and the built-in library of this binary.
func inputsDigest(appDir string) (string, error) {
	h := sha256.New()
	add := func(name string, r io.Reader) error {
		fmt.Fprintf(h, "%s\x00", name)
		_, err := io.Copy(h, r)
		return err
	}
	f, err := os.Open(filepath.Join(appDir, config.FileName))
	if err != nil {
		return "", fmt.Errorf("digest inputs: %w", err)
	}
	err = add(config.FileName, f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("digest inputs: %w", err)
	}
	for _, sub := range []string{"components", "lib"} {
		root := filepath.Join(appDir, sub)
		if err := hashTree(os.DirFS(root), sub+"/", add); err != nil {
			return "", fmt.Errorf("digest %s: %w", root, err)
		}
	}
	if err := hashTree(jsonnet.Library, "<builtin>/", add); err != nil {
		return "", fmt.Errorf("digest built-in library: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashTree(fsys fs.FS, prefix string, add func(string, io.Reader) error) error {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == "." {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		err = add(prefix+p, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
