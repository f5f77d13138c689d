package config

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PullSecret is one entry of spec.images.pullSecrets: the name of a docker-registry Secret
// (type kubernetes.io/dockerconfigjson) of the app's namespace. Without File the operator
// creates the Secret; with File kfdeploy makes it from that docker config file (as
// `docker login` or `skopeo login` write it), keeps its contents in secrets.yaml and applies
// the Secret with the app, so the file may be removed after generate.
type PullSecret struct {
	Name string `yaml:"name" json:"name"`
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Line is the line of app.yaml that names it, for errors found after decoding.
	Line int `yaml:"-" json:"-"`
}

// decodePullSecrets reads spec.images.pullSecrets: a list whose entries are a Secret's name or
// a mapping {name, file}.
func decodePullSecrets(n *yaml.Node) ([]PullSecret, []string) {
	const example = "e.g. [regcred] or [{name: mirror-login, file: mirror-auth.json}]"
	if n.Kind != yaml.SequenceNode {
		return nil, []string{fmt.Sprintf("line %d: spec.images.pullSecrets must be a list of Secret names or {name, file} entries, %s", n.Line, example)}
	}
	var out []PullSecret
	var errs []string
	fail := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, a...))
	}
	seen := map[string]int{}
	for _, e := range n.Content {
		ps := PullSecret{Line: e.Line}
		switch e.Kind {
		case yaml.ScalarNode:
			ps.Name = e.Value
		case yaml.MappingNode:
			for i := 0; i+1 < len(e.Content); i += 2 {
				key, val := e.Content[i], e.Content[i+1]
				if val.Kind != yaml.ScalarNode {
					fail(val.Line, "spec.images.pullSecrets: %s must be a string", key.Value)
					continue
				}
				switch key.Value {
				case "name":
					ps.Name = val.Value
				case "file":
					ps.File = val.Value
					if strings.TrimSpace(val.Value) == "" {
						fail(val.Line, "spec.images.pullSecrets: file is empty: name a docker config file (e.g. mirror-auth.json, as 'skopeo login --authfile' writes it) or leave file out for a Secret you create")
					}
				default:
					fail(key.Line, "spec.images.pullSecrets: field %s not found (expected name, file)", key.Value)
				}
			}
		default:
			fail(e.Line, "spec.images.pullSecrets: each entry is a Secret name or {name, file}, %s", example)
			continue
		}
		if ps.Name == "" {
			fail(e.Line, "spec.images.pullSecrets: an entry has no name, %s", example)
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(ps.Name); len(msgs) > 0 {
			fail(e.Line, "spec.images.pullSecrets: %q is not a valid Secret name: %s", ps.Name, strings.Join(msgs, "; "))
			continue
		}
		if prev, dup := seen[ps.Name]; dup {
			fail(e.Line, "spec.images.pullSecrets: %s is listed twice (first on line %d)", ps.Name, prev)
			continue
		}
		seen[ps.Name] = e.Line
		out = append(out, ps)
	}
	return out, errs
}

// PullSecretNames lists the names of spec.images.pullSecrets in their order; none for nil
// images.
func (im *Images) PullSecretNames() []string {
	if im == nil {
		return nil
	}
	names := make([]string, 0, len(im.PullSecrets))
	for _, ps := range im.PullSecrets {
		names = append(names, ps.Name)
	}
	return names
}
