package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	yaml "go.yaml.in/yaml/v3"
)

// ParseParamValue reads a parameter value given on the command line as YAML, the way app.yaml
// would hold it: 1 is a number, true a boolean, null null, [a, b] a list, {a: 1} a map, and
// '""' (or an empty argument) the empty string. It returns the node to put into app.yaml and
// the value that Load will decode from it.
func ParseParamValue(s string) (*yaml.Node, any, error) {
	if s == "" {
		// An empty argument can only mean the empty string; YAML would read it as no value at all.
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "", Style: yaml.DoubleQuotedStyle}
		return n, "", nil
	}
	dec := yaml.NewDecoder(strings.NewReader(s))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("value %q holds no YAML value: quote it to set a string, e.g. '\"%s\"'", s, s)
		}
		return nil, nil, fmt.Errorf("value %q is not valid YAML (%s): quote strings, e.g. '\"...\"'", s, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("value %q holds more than one YAML document: pass a single value", s)
	}
	n := doc.Content[0]
	if n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!timestamp" {
		// Parameters are JSON values, which have no timestamps: keep what was typed as a string
		// instead of letting the decoder turn 2024-12-09 into 2024-12-09T00:00:00Z.
		n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, nil, &yamlError{msg: fmt.Sprintf("value %q: %s", s, strings.TrimPrefix(err.Error(), "yaml: ")), err: err}
	}
	return n, v, nil
}

// Document is app.yaml as a yaml.v3 node tree. Edits go into the tree so that comments, key
// order and quoting survive; Bytes also restores the blank lines that yaml.v3 drops.
type Document struct {
	path     string
	original []byte
	root     yaml.Node
	indent   int
	compact  bool // sequences written at their key's indentation ("- " under "components:")
}

// ParseDocument reads app.yaml for editing. It does not validate the App: call Parse for that.
func ParseDocument(path string, data []byte) (*Document, error) {
	d := &Document{path: path, original: data, indent: 2}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d.root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; expected an App document (apiVersion: %s)", path, APIVersion)
		}
		return nil, describeYAMLError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		// Re-encoding would silently drop the other documents.
		return nil, fmt.Errorf("%s holds more than one YAML document: keep only the App document, then retry", path)
	}
	if len(d.root.Content) != 1 || d.root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected a mapping (apiVersion, kind, metadata, spec)", path, d.root.Line)
	}
	d.detectLayout()
	return d, nil
}

// detectLayout finds the indentation the file uses, so that an edit does not re-indent it.
func (d *Document) detectLayout() {
	spec := mapValue(d.root.Content[0], "spec")
	if spec == nil || spec.Kind != yaml.MappingNode || spec.Style&yaml.FlowStyle != 0 || len(spec.Content) == 0 {
		return
	}
	specKey := mapKey(d.root.Content[0], "spec")
	if in := spec.Content[0].Column - specKey.Column; in > 0 {
		d.indent = in
	}
	key := mapKey(spec, "components")
	seq := mapValue(spec, "components")
	if key == nil || seq == nil || seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return
	}
	// An item's content starts two columns ("- ") after its dash.
	d.compact = seq.Content[0].Column-key.Column == 2
}

// SetParam sets component's parameter key to value, creating the params mapping if needed. An
// existing value's comments stay with the key.
func (d *Document) SetParam(component, key string, value *yaml.Node) error {
	params, err := d.params(component, true)
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(params.Content); i += 2 {
		if params.Content[i].Value == key {
			old := params.Content[i+1]
			if value.HeadComment == "" && value.LineComment == "" && value.FootComment == "" {
				value.HeadComment, value.LineComment, value.FootComment = old.HeadComment, old.LineComment, old.FootComment
			}
			params.Content[i+1] = value
			return nil
		}
	}
	params.Content = append(params.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, value)
	return nil
}

// UnsetParam removes component's parameter key and reports whether app.yaml had it. A params
// mapping left empty is removed too, unless it carries comments.
func (d *Document) UnsetParam(component, key string) (bool, error) {
	item, err := d.component(component)
	if err != nil {
		return false, err
	}
	params, err := d.params(component, false)
	if err != nil || params == nil {
		return false, err
	}
	for i := 0; i+1 < len(params.Content); i += 2 {
		if params.Content[i].Value != key {
			continue
		}
		params.Content = append(params.Content[:i], params.Content[i+2:]...)
		if len(params.Content) == 0 {
			for j := 0; j+1 < len(item.Content); j += 2 {
				k, v := item.Content[j], item.Content[j+1]
				if k.Value == "params" && !hasComments(k) && !hasComments(v) {
					item.Content = append(item.Content[:j], item.Content[j+2:]...)
					break
				}
			}
		}
		return true, nil
	}
	return false, nil
}

// component finds the spec.components entry with the given name.
func (d *Document) component(name string) (*yaml.Node, error) {
	root := d.root.Content[0]
	spec := mapValue(root, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: spec is missing or not a mapping: fix app.yaml (see 'kfdeploy init')", d.path, root.Line)
	}
	list := mapValue(spec, "components")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: spec.components is missing or not a list: fix app.yaml", d.path, spec.Line)
	}
	for i, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: spec.components[%d] is not a mapping: expected {name: ..., params: {...}}", d.path, item.Line, i)
		}
		if n := mapValue(item, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value == name {
			return item, nil
		}
	}
	return nil, fmt.Errorf("%s: spec.components has no component %q: add it to app.yaml first", d.path, name)
}

// params returns the component's params mapping, creating an empty one when create is set.
func (d *Document) params(component string, create bool) (*yaml.Node, error) {
	item, err := d.component(component)
	if err != nil {
		return nil, err
	}
	params := mapValue(item, "params")
	switch {
	case params == nil && !create:
		return nil, nil
	case params == nil:
		params = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		item.Content = append(item.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "params"}, params)
	case params.Kind == yaml.ScalarNode && params.ShortTag() == "!!null":
		// "params:" with nothing after it, or "params: null": turn it into a mapping in place.
		*params = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: params.HeadComment, LineComment: params.LineComment, FootComment: params.FootComment}
	case params.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("%s:%d: params of component %s is not a mapping: expected param: value lines", d.path, mapKey(item, "params").Line, component)
	}
	return params, nil
}

// Bytes encodes the edited document in the file's own layout.
func (d *Document) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(d.indent)
	if d.compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(&d.root); err != nil {
		return nil, fmt.Errorf("encode %s: %w", d.path, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", d.path, err)
	}
	encoded := buf.Bytes()
	restored := restoreBlankLines(d.original, encoded)
	// Blank lines never change a document's meaning outside block scalars; make sure of it
	// rather than risk rewriting a value.
	if !sameYAML(encoded, restored) {
		return encoded, nil
	}
	return restored, nil
}

// restoreBlankLines puts back the original's blank lines into encoded, which is the original
// re-encoded (with an edit): where a line diff says that only blank lines went missing, they
// are reinserted.
func restoreBlankLines(original, encoded []byte) []byte {
	a, b := splitLines(original), splitLines(encoded)
	m := difflib.NewMatcherWithJunk(a, b, false, nil)
	var out strings.Builder
	write := func(lines []string) {
		for _, l := range lines {
			out.WriteString(l)
		}
	}
	for _, op := range m.GetOpCodes() {
		old, repl := a[op.I1:op.I2], b[op.J1:op.J2]
		switch op.Tag {
		case 'd':
			if allBlank(old) {
				write(old)
			}
		case 'r':
			// An edited line next to a blank line comes as one replacement: keep the blank
			// lines around the replaced block.
			lead, trail := 0, len(old)
			for lead < len(old) && allBlank(old[lead:lead+1]) {
				lead++
			}
			for trail > lead && allBlank(old[trail-1:trail]) {
				trail--
			}
			write(old[:lead])
			write(repl)
			write(old[trail:])
		default:
			write(repl)
		}
	}
	return []byte(out.String())
}

// splitLines keeps each line's "\n" (unlike difflib.SplitLines, it adds no line at the end).
func splitLines(data []byte) []string {
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func allBlank(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return false
		}
	}
	return true
}

func sameYAML(x, y []byte) bool {
	var vx, vy any
	if yaml.Unmarshal(x, &vx) != nil || yaml.Unmarshal(y, &vy) != nil {
		return false
	}
	return reflect.DeepEqual(vx, vy)
}

func hasComments(n *yaml.Node) bool {
	return n.HeadComment != "" || n.LineComment != "" || n.FootComment != ""
}

func mapKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
