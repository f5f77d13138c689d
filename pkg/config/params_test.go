package config

import (
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func TestParseParamValue(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"1", 1},
		{"1.5", 1.5},
		{"true", true},
		{"null", nil},
		{"~", nil},
		{`""`, ""},
		{"", ""},
		{`"1"`, "1"},
		{"hello", "hello"},
		{"[a, b]", []any{"a", "b"}},
		{"{a: 1}", map[string]any{"a": 1}},
		// A date is not a JSON type: it stays what was typed.
		{"2024-12-09", "2024-12-09"},
	}
	for _, c := range cases {
		n, v, err := ParseParamValue(c.in)
		if err != nil {
			t.Errorf("ParseParamValue(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(v, c.want) {
			t.Errorf("ParseParamValue(%q) = %#v, want %#v", c.in, v, c.want)
		}
		// What app.yaml will hold decodes to the same value.
		out, err := yaml.Marshal(map[string]*yaml.Node{"k": n})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back["k"], c.want) {
			t.Errorf("ParseParamValue(%q) encodes as %q, which decodes to %#v", c.in, out, back["k"])
		}
	}
}

func TestParseParamValueErrors(t *testing.T) {
	for in, want := range map[string]string{
		"[a":        "not valid YAML",
		"# note":    "holds no YAML value",
		"a\n---\nb": "more than one YAML document",
	} {
		_, _, err := ParseParamValue(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseParamValue(%q) error = %v, want it to mention %q", in, err, want)
		}
	}
}

const commented = `# My lab's platform.
apiVersion: kfdeploy.dev/v1alpha1
kind: App
metadata:
  name: demo

spec:
  platform: none
  namespace: kubeflow # shared with the data team

  # Order matters for humans only.
  components:
  - name: core
  # Notebooks for the course.
  - name: jupyter
    params:
      # Course images are big.
      storageSize: 20Gi # was 10Gi

      cpu: "1"
  - {name: argo}
  storage:
    nfs: {server: 10.0.0.2, path: /exports}
# end
`

func edit(t *testing.T, src string, f func(d *Document)) string {
	t.Helper()
	d, err := ParseDocument("app.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f(d)
	out, err := d.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("app.yaml", out); err != nil {
		t.Fatalf("edited document does not load: %v\n%s", err, out)
	}
	return string(out)
}

func set(t *testing.T, d *Document, component, key, value string) {
	t.Helper()
	n, _, err := ParseParamValue(value)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetParam(component, key, n); err != nil {
		t.Fatal(err)
	}
}

func TestDocumentUnchangedRoundTrip(t *testing.T) {
	if got := edit(t, commented, func(*Document) {}); got != commented {
		t.Errorf("re-encoding without an edit changed the file:\n%s", got)
	}
	indented := strings.NewReplacer("\n  - ", "\n    - ", "\n    params", "\n      params", "\n      ", "\n        ", "\n  # Notebooks", "\n    # Notebooks").Replace(commented)
	if got := edit(t, indented, func(*Document) {}); got != indented {
		t.Errorf("re-encoding an indented list without an edit changed it:\n%s\nwant:\n%s", got, indented)
	}
}

func TestDocumentSetParam(t *testing.T) {
	got := edit(t, commented, func(d *Document) {
		set(t, d, "jupyter", "storageSize", "30Gi") // replaced, comment kept
		set(t, d, "jupyter", "gpus", "1")           // appended
		set(t, d, "core", "serviceAccount", "ml")   // params created
		set(t, d, "argo", "namespaced", "true")     // in a flow mapping
	})
	want := strings.NewReplacer(
		"storageSize: 20Gi # was 10Gi", "storageSize: 30Gi # was 10Gi",
		"      cpu: \"1\"\n", "      cpu: \"1\"\n      gpus: 1\n",
		"  - name: core\n", "  - name: core\n    params:\n      serviceAccount: ml\n",
		"  - {name: argo}", "  - {name: argo, params: {namespaced: true}}",
	).Replace(commented)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDocumentUnsetParam(t *testing.T) {
	var had [3]bool
	got := edit(t, commented, func(d *Document) {
		var err error
		if had[0], err = d.UnsetParam("jupyter", "storageSize"); err != nil {
			t.Fatal(err)
		}
		if had[1], err = d.UnsetParam("jupyter", "cpu"); err != nil {
			t.Fatal(err)
		}
		if had[2], err = d.UnsetParam("core", "cpu"); err != nil {
			t.Fatal(err)
		}
	})
	if had != [3]bool{true, true, false} {
		t.Errorf("UnsetParam reported %v, want [true true false]", had)
	}
	// The emptied params mapping goes too; the other comments stay.
	want := strings.Replace(commented, "    params:\n      # Course images are big.\n      storageSize: 20Gi # was 10Gi\n\n      cpu: \"1\"\n", "", 1)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDocumentNullParams(t *testing.T) {
	src := strings.Replace(commented, "  - name: core\n", "  - name: core\n    params:\n", 1)
	got := edit(t, src, func(d *Document) { set(t, d, "core", "serviceAccount", "ml") })
	want := strings.Replace(commented, "  - name: core\n", "  - name: core\n    params:\n      serviceAccount: ml\n", 1)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDocumentErrors(t *testing.T) {
	d, err := ParseDocument("app.yaml", []byte(commented))
	if err != nil {
		t.Fatal(err)
	}
	n, _, _ := ParseParamValue("1")
	if err := d.SetParam("katib", "x", n); err == nil || !strings.Contains(err.Error(), `no component "katib"`) {
		t.Errorf("SetParam on a missing component: %v", err)
	}
	bad := strings.Replace(commented, "      # Course images are big.\n      storageSize: 20Gi # was 10Gi\n\n      cpu: \"1\"\n", "      - a\n", 1)
	d, err = ParseDocument("app.yaml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetParam("jupyter", "x", n); err == nil || !strings.Contains(err.Error(), "app.yaml:16: params of component jupyter is not a mapping") {
		t.Errorf("SetParam on a list of params: %v", err)
	}
	if _, err := ParseDocument("app.yaml", []byte(commented+"---\nkind: Other\n")); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("ParseDocument of two documents: %v", err)
	}
	if _, err := ParseDocument("app.yaml", []byte("a: [\n")); err == nil || !strings.HasPrefix(err.Error(), "app.yaml:") {
		t.Errorf("ParseDocument of broken YAML: %v", err)
	}
}
