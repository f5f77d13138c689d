// Package config reads, validates and writes app.yaml, the document that describes an app.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

const (
	// APIVersion and Kind identify an app.yaml document.
	APIVersion = "kfdeploy.dev/v1alpha1"
	Kind       = "App"
	// FileName is the name of the app document inside an app directory.
	FileName = "app.yaml"
	// PlatformNone deploys onto an existing cluster without provisioning anything.
	PlatformNone = "none"
	// DefaultNamespace is where the platform goes unless the app says otherwise.
	DefaultNamespace = "kubeflow"
)

// App is the app.yaml document.
type App struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`
}

// Metadata names the app.
type Metadata struct {
	Name string `yaml:"name" json:"name"`
}

// Spec is what the app deploys and where.
type Spec struct {
	Platform   string      `yaml:"platform" json:"platform"`
	Namespace  string      `yaml:"namespace" json:"namespace"`
	Components []Component `yaml:"components" json:"components"`
	Storage    *Storage    `yaml:"storage,omitempty" json:"storage,omitempty"`
	GPU        *GPU        `yaml:"gpu,omitempty" json:"gpu,omitempty"`
	// Images rewrites the images the cluster pulls (a mirror registry, overrides): images.go.
	Images *Images `yaml:"images,omitempty" json:"images,omitempty"`
}

// Component is one entry of the component list with the parameters that override its defaults.
type Component struct {
	Name   string         `yaml:"name" json:"name"`
	Params map[string]any `yaml:"params,omitempty" json:"params,omitempty"`
}

// Storage configures how claims without a matching volume get one.
type Storage struct {
	NFS *NFS `yaml:"nfs,omitempty" json:"nfs,omitempty"`
}

// NFS is an NFS export on which kfdeploy creates PersistentVolumes for unbound claims.
type NFS struct {
	Server string `yaml:"server" json:"server"`
	Path   string `yaml:"path" json:"path"`
}

// GPU names the extended resources that count as GPUs.
type GPU struct {
	ResourceNames []string `yaml:"resourceNames,omitempty" json:"resourceNames,omitempty"`
}

// dnsLabel is the RFC 1123 label rule that namespaces and app names must follow.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName reports whether s can name an app or a namespace.
func ValidName(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// New returns the app document that `init` writes.
func New(name, platform, namespace string, components []Component) *App {
	return &App{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   Metadata{Name: name},
		Spec:       Spec{Platform: platform, Namespace: namespace, Components: components},
	}
}

// Load reads and validates dir/app.yaml.
func Load(dir string) (*App, error) {
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s not found: run kfdeploy in an app directory, pass --app-dir, or create one with 'kfdeploy init DIR'", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read app: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes an app document strictly: unknown fields and wrong types are errors that name
// the file, the line and the field.
func Parse(path string, data []byte) (*App, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var app App
	if err := dec.Decode(&app); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; expected an App document (apiVersion: %s)", path, APIVersion)
		}
		return nil, describeYAMLError(path, err)
	}
	if err := app.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &app, nil
}

// yamlError is a decoding error retold as "path:line: message", still wrapping yaml's own.
type yamlError struct {
	msg string
	err error
}

func (e *yamlError) Error() string { return e.msg }
func (e *yamlError) Unwrap() error { return e.err }

// describeYAMLError turns yaml.v3's "yaml: unmarshal errors:\n  line 3: ..." into
// "path:3: ..." lines joined by "; ".
func describeYAMLError(path string, err error) error {
	return &yamlError{msg: describeYAML(path, err), err: err}
}

func describeYAML(path string, err error) string {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		msgs := make([]string, 0, len(typeErr.Errors))
		for _, e := range typeErr.Errors {
			msgs = append(msgs, path+":"+strings.TrimPrefix(strings.Replace(e, "line ", "", 1), " "))
		}
		return strings.Join(msgs, "; ")
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		return path + ":" + strings.TrimPrefix(msg, "line ")
	}
	return path + ": " + msg
}

// Validate checks what the YAML types cannot.
func (a *App) Validate() error {
	var errs []error
	if a.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion is %q, expected %q", a.APIVersion, APIVersion))
	}
	if a.Kind != Kind {
		errs = append(errs, fmt.Errorf("kind is %q, expected %q", a.Kind, Kind))
	}
	if !ValidName(a.Metadata.Name) {
		errs = append(errs, fmt.Errorf("metadata.name %q must be a DNS label (lower case letters, digits and '-', at most 63)", a.Metadata.Name))
	}
	if a.Spec.Platform != PlatformNone {
		errs = append(errs, fmt.Errorf("spec.platform %q is not supported; expected %q", a.Spec.Platform, PlatformNone))
	}
	if !ValidName(a.Spec.Namespace) {
		errs = append(errs, fmt.Errorf("spec.namespace %q must be a DNS label", a.Spec.Namespace))
	}
	seen := map[string]bool{}
	for i, c := range a.Spec.Components {
		switch {
		case !ValidName(c.Name):
			errs = append(errs, fmt.Errorf("spec.components[%d].name %q must be a DNS label", i, c.Name))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("spec.components[%d]: component %q is listed twice", i, c.Name))
		}
		seen[c.Name] = true
	}
	if nfs := a.Spec.Storage; nfs != nil && nfs.NFS != nil {
		if nfs.NFS.Server == "" || !strings.HasPrefix(nfs.NFS.Path, "/") {
			errs = append(errs, fmt.Errorf("spec.storage.nfs needs a server and an absolute path, got server %q path %q", nfs.NFS.Server, nfs.NFS.Path))
		}
	}
	return errors.Join(errs...)
}

// ComponentNames lists the app's components in order.
func (a *App) ComponentNames() []string {
	names := make([]string, len(a.Spec.Components))
	for i, c := range a.Spec.Components {
		names[i] = c.Name
	}
	return names
}

// GPUResourceNames returns the extended resources counted as GPUs (default nvidia.com/gpu).
func (a *App) GPUResourceNames() []string {
	if a.Spec.GPU != nil && len(a.Spec.GPU.ResourceNames) > 0 {
		return a.Spec.GPU.ResourceNames
	}
	return []string{"nvidia.com/gpu"}
}

// Marshal renders the document as YAML.
func (a *App) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode app: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode app: %w", err)
	}
	return buf.Bytes(), nil
}
