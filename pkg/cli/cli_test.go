package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// kfdeploy runs the root command as main does, with the output in buffers.
func kfdeploy(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := kfdeploy(t, args...)
	if err != nil {
		t.Fatalf("kfdeploy %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// mustFail runs a command that must fail with a one-line error containing every want.
func mustFail(t *testing.T, want []string, args ...string) error {
	t.Helper()
	_, _, err := kfdeploy(t, args...)
	if err == nil {
		t.Fatalf("kfdeploy %s succeeded, want an error", strings.Join(args, " "))
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("kfdeploy %s: the error spans several lines:\n%v", strings.Join(args, " "), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("kfdeploy %s: error %q does not mention %q", strings.Join(args, " "), err, w)
		}
	}
	return err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./pkg/cli -update' to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if the change is intended):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The test app's own components, so that exact outputs do not follow the built-in library.
const (
	// notebook has a parameter of every JSON type, a generated secret, and workloads of each
	// kind whose images the catalogue collects (with a repeated image).
	notebookComponent = `{
  description: 'A notebook for tests',
  params: {
    image: { default: 'example.com/notebook:1', description: 'Notebook image' },
    gpus: { default: 0, description: 'GPUs' },
    enabled: { default: true, description: 'Whether to run it' },
    storageClass: { default: null, description: 'StorageClass (null: default)' },
    args: { default: [], description: 'Extra arguments' },
    labels: { default: {}, description: 'Extra labels' },
  },
  secrets: { token: { description: 'Notebook login token' } },
  local pod(image) = { spec: { initContainers: [{ name: 'init', image: 'example.com/init:1' }], containers: [{ name: 'main', image: image }] } },
  render(p, env):: [
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'nb', namespace: env.namespace }, spec: { template: pod(p.image) } },
    { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'nb-db', namespace: env.namespace }, spec: { template: pod('example.com/db:2') } },
    { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'nb-agent', namespace: env.namespace }, spec: { template: pod('example.com/agent:3') } },
    { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'nb-setup', namespace: env.namespace }, spec: { template: pod(p.image) } },
    { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nb-backup', namespace: env.namespace }, spec: { jobTemplate: { spec: { template: pod('example.com/backup:4') } } } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nb-debug', namespace: env.namespace }, spec: pod('example.com/debug:5').spec },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'nb', namespace: env.namespace }, stringData: { token: env.secrets.token } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nb', namespace: env.namespace }, data: { image: 'not-a-container:image' } },
  ],
}
`
	// core overrides the built-in core with a tiny one.
	coreOverride = `{
  description: 'The app namespace only',
  params: { labels: { default: {}, description: 'Namespace labels' } },
  render(p, env):: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: env.namespace, labels: p.labels } }],
}
`
	staticConfigMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static\n  namespace: ml\ndata:\n  a: b\n"

	// appYAML has comments, blank lines, both list styles and a flow mapping: param set must
	// keep them all.
	appYAML = `# Course platform: one notebook per student.
apiVersion: kfdeploy.dev/v1alpha1
kind: App
metadata:
  name: course

spec:
  platform: none
  namespace: ml # shared with the TA tools

  # Namespace first.
  components:
  - name: core
  # The notebook students use.
  - name: notebook
    params:
      # The course image has the datasets baked in.
      image: example.com/course:2024 # pinned for the term

      args: [--debug]
  - {name: static}
# end of app
`
)

// newApp writes the test app (app.yaml and its own components) into a temporary directory.
func newApp(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "course")
	write(t, filepath.Join(dir, "app.yaml"), appYAML)
	write(t, filepath.Join(dir, "components", "notebook.jsonnet"), notebookComponent)
	write(t, filepath.Join(dir, "components", "core.jsonnet"), coreOverride)
	write(t, filepath.Join(dir, "components", "static", "cm.yaml"), staticConfigMap)
	return dir
}

func TestComponentsListsLibraryWithImages(t *testing.T) {
	out := mustRun(t, "components", "-o", "json", "--app-dir", t.TempDir())
	var list []app.ComponentSummary
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("components -o json: %v\n%s", err, out)
	}
	builtin, err := render.New(jsonnet.Library, "").Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
		if c.App || c.Source != "builtin" {
			t.Errorf("outside an app, %s is listed as the app's own (source %s)", c.Name, c.Source)
		}
		if c.Description == "" && c.Error == "" {
			t.Errorf("built-in component %s has no description", c.Name)
		}
	}
	if !reflect.DeepEqual(names, builtin) {
		t.Errorf("components lists %v, want the built-in library %v", names, builtin)
	}

	// The jupyter row's images are those of its rendered Deployment.
	objs, err := render.New(jsonnet.Library, "").Render("jupyter", nil, render.Env{App: "x", Namespace: "kubeflow", Platform: "none"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Name == "jupyter" {
			if want := app.Images(objs); len(want) == 0 || !reflect.DeepEqual(c.Images, want) {
				t.Errorf("jupyter images %v, want %v", c.Images, want)
			}
		}
	}

	text := mustRun(t, "components", "--app-dir", t.TempDir())
	if !strings.HasPrefix(text, "NAME") || !regexp.MustCompile(`(?m)^jupyter\s+builtin\s+\S.*\s\S+/\S+:\S+$`).MatchString(text) {
		t.Errorf("components text output has no NAME header or no jupyter row with an image:\n%s", text)
	}
}

func TestComponentsInAppMarksTheAppsOwn(t *testing.T) {
	dir := newApp(t)
	out := mustRun(t, "components", "--app-dir", dir)
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		rows[strings.Fields(line)[0]] = strings.Join(strings.Fields(line), " ")
	}
	for name, want := range map[string]string{
		"notebook": "notebook components/notebook.jsonnet A notebook for tests example.com/agent:3,example.com/backup:4,example.com/db:2,example.com/debug:5,example.com/init:1,example.com/notebook:1",
		"core":     "core components/core.jsonnet (overrides built-in) The app namespace only -",
		"static":   "static components/static plain YAML from", // render describes it with its absolute path
	} {
		if !strings.HasPrefix(rows[name], want) || (name != "static" && rows[name] != want) {
			t.Errorf("components row %s:\ngot:  %s\nwant: %s", name, rows[name], want)
		}
	}
	if !strings.Contains(rows["jupyter"], "builtin") {
		t.Errorf("the built-in jupyter is missing from the app's listing: %q", rows["jupyter"])
	}

	var list []app.ComponentSummary
	if err := json.Unmarshal([]byte(mustRun(t, "components", "-o", "json", "--app-dir", dir)), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Name == "notebook" && (!c.App || c.OverridesBuiltin || c.Source != "components/notebook.jsonnet" || len(c.Images) != 6) {
			t.Errorf("notebook in -o json: %+v", c)
		}
		if c.Name == "core" && (!c.App || !c.OverridesBuiltin) {
			t.Errorf("core in -o json: %+v", c)
		}
	}
}

func TestComponentsShow(t *testing.T) {
	dir := newApp(t)
	golden(t, "components-show", mustRun(t, "components", "show", "notebook", "--app-dir", dir))

	var d app.ComponentDetail
	if err := json.Unmarshal([]byte(mustRun(t, "components", "show", "notebook", "-o", "json", "--app-dir", dir)), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Params) != 6 || d.Params[0].Name != "args" || !reflect.DeepEqual(d.Secrets, []app.SecretInfo{{Name: "token", Description: "Notebook login token"}}) {
		t.Errorf("components show -o json: params %+v, secrets %+v", d.Params, d.Secrets)
	}

	// A generated password is never shown, not even once it exists.
	mustRun(t, "generate", "--app-dir", dir)
	var stored map[string]string
	if err := yaml.Unmarshal([]byte(read(t, filepath.Join(dir, "secrets.yaml"))), &stored); err != nil {
		t.Fatal(err)
	}
	password := stored["notebook/token"]
	if password == "" {
		t.Fatalf("secrets.yaml has no notebook/token: %v", stored)
	}
	for _, args := range [][]string{{"components", "show", "notebook"}, {"components", "show", "notebook", "-o", "json"}, {"components"}} {
		if out := mustRun(t, append(args, "--app-dir", dir)...); strings.Contains(out, password) {
			t.Errorf("kfdeploy %v prints the generated password", args)
		}
	}

	builtin := mustRun(t, "components", "show", "jupyter")
	for _, want := range []string{"jupyter: ", "source: builtin", "PARAMETER", "gpus", "images (at the defaults):"} {
		if !strings.Contains(builtin, want) {
			t.Errorf("components show jupyter does not print %q:\n%s", want, builtin)
		}
	}
}

func TestComponentsShowUnknown(t *testing.T) {
	mustFail(t, []string{`unknown component "nope"`, "jupyter", "notebook", "kfdeploy components"},
		"components", "show", "nope", "--app-dir", newApp(t))
	mustFail(t, []string{`--output "yaml" is not supported`}, "components", "-o", "yaml")
}

func TestParamSetKeepsCommentsAndOrder(t *testing.T) {
	dir := newApp(t)
	for _, c := range []struct{ args, out string }{
		{"notebook gpus 1", "notebook.gpus = 1 (was 0, the default); run 'kfdeploy generate' to render it\n"},
		{"notebook image example.com/course:2025", `notebook.image = "example.com/course:2025" (was "example.com/course:2024" in app.yaml); run 'kfdeploy generate' to render it` + "\n"},
		{"core labels {team: ml}", `core.labels = {"team":"ml"} (was {}, the default); run 'kfdeploy generate' to render it` + "\n"},
		{"notebook gpus 1", "notebook.gpus = 1 (unchanged: app.yaml already sets it)\n"},
	} {
		args := append([]string{"param", "set"}, strings.SplitN(c.args, " ", 3)...)
		if out := mustRun(t, append(args, "--app-dir", dir)...); out != c.out {
			t.Errorf("kfdeploy %s printed %q, want %q", strings.Join(args, " "), out, c.out)
		}
	}
	golden(t, "param-set-app.yaml", read(t, filepath.Join(dir, "app.yaml")))
	mustRun(t, "generate", "--app-dir", dir)
}

func TestParamSetParsesValuesAsYAML(t *testing.T) {
	for _, c := range []struct {
		param, value string
		want         any
	}{
		{"gpus", "2", 2.0},
		{"enabled", "false", false},
		{"image", `""`, ""},
		{"image", "", ""},
		{"image", "'2'", "2"},
		{"storageClass", `""`, ""},
		{"storageClass", "fast", "fast"},
		{"gpus", "null", nil},
		{"args", "[a, b]", []any{"a", "b"}},
		{"labels", "{a: 1}", map[string]any{"a": 1.0}},
	} {
		dir := newApp(t)
		mustRun(t, "param", "set", "notebook", c.param, c.value, "--app-dir", dir)
		var list []app.ParamValue
		if err := json.Unmarshal([]byte(mustRun(t, "param", "list", "notebook", "-o", "json", "--app-dir", dir)), &list); err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			if p.Param == c.param && (!reflect.DeepEqual(p.Value, c.want) || p.Source != "app.yaml") {
				t.Errorf("param set notebook %s %q: list shows %#v from %s, want %#v from app.yaml", c.param, c.value, p.Value, p.Source, c.want)
			}
		}
		// What was written renders.
		mustRun(t, "generate", "--app-dir", dir)
	}
}

func TestParamSetRejectsBadInputLeavingAppYAMLAlone(t *testing.T) {
	dir := newApp(t)
	appFile := filepath.Join(dir, "app.yaml")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"jupyter", "gpus", "1"}, []string{`component "jupyter" is not in`, "app.yaml", "components: core, notebook, static"}},
		{[]string{"notebook", "gpu", "1"}, []string{`no parameter "gpu"`, "args, enabled, gpus, image, labels, storageClass"}},
		{[]string{"notebook", "gpus", "many"}, []string{"notebook.gpus must be a number", `got string "many"`, "read as YAML"}},
		{[]string{"notebook", "gpus", `"1"`}, []string{"notebook.gpus must be a number", `got string "1"`}},
		{[]string{"notebook", "labels", "[a]"}, []string{"notebook.labels must be an object", "got array"}},
		{[]string{"notebook", "enabled", "yes please"}, []string{"notebook.enabled must be a boolean"}},
		{[]string{"notebook", "args", "[a"}, []string{`value "[a" is not valid YAML`}},
		{[]string{"static", "x", "1"}, []string{"component static is plain YAML", "takes no parameters"}},
	} {
		before := read(t, appFile)
		mustFail(t, c.want, append(append([]string{"param", "set"}, c.args...), "--app-dir", dir)...)
		if after := read(t, appFile); after != before {
			t.Errorf("a failed param set %v changed app.yaml:\n%s", c.args, after)
		}
	}
	mustFail(t, []string{`no parameter "bogus"`}, "param", "unset", "notebook", "bogus", "--app-dir", dir)
	if read(t, appFile) != appYAML {
		t.Error("failed param commands changed app.yaml")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a failed param set left %s behind", e.Name())
		}
	}

	// An app.yaml that does not load is not edited.
	broken := strings.Replace(appYAML, "  platform: none\n", "  platform: none\n  colour: blue\n", 1)
	write(t, appFile, broken)
	mustFail(t, []string{"app.yaml:9:", "colour"}, "param", "set", "notebook", "gpus", "1", "--app-dir", dir)
	if read(t, appFile) != broken {
		t.Error("param set changed an app.yaml that does not load")
	}
}

func TestParamUnsetRestoresDefaults(t *testing.T) {
	dir := newApp(t)
	appFile := filepath.Join(dir, "app.yaml")
	mustRun(t, "param", "set", "core", "labels", "{a: b}", "--app-dir", dir)
	mustRun(t, "param", "set", "notebook", "gpus", "1", "--app-dir", dir)
	if out := mustRun(t, "param", "unset", "notebook", "gpus", "--app-dir", dir); out != "notebook.gpus = 0, the default (was 1 in app.yaml); run 'kfdeploy generate' to render it\n" {
		t.Errorf("param unset printed %q", out)
	}
	mustRun(t, "param", "unset", "core", "labels", "--app-dir", dir)
	// Setting and unsetting gives back the file as it was, params: of core included.
	if got := read(t, appFile); got != appYAML {
		t.Errorf("set then unset changed app.yaml:\n%s", got)
	}
	if out := mustRun(t, "param", "unset", "notebook", "gpus", "--app-dir", dir); out != "notebook.gpus is not set in app.yaml: it has its default 0\n" {
		t.Errorf("param unset of an unset parameter printed %q", out)
	}
	// A parameter the component no longer has can be removed: that is how it gets fixed.
	write(t, appFile, strings.Replace(appYAML, "      args: [--debug]\n", "      args: [--debug]\n      retired: 1\n", 1))
	mustFail(t, []string{`no parameter "retired"`}, "generate", "--app-dir", dir)
	mustRun(t, "param", "unset", "notebook", "retired", "--app-dir", dir)
	if got := read(t, appFile); got != appYAML {
		t.Errorf("unset of a retired parameter left:\n%s", got)
	}
}

func TestParamList(t *testing.T) {
	dir := newApp(t)
	write(t, filepath.Join(dir, "app.yaml"), strings.Replace(appYAML, "      args: [--debug]\n", "      args: [--debug]\n      retired: 1\n", 1))
	golden(t, "param-list", mustRun(t, "param", "list", "--app-dir", dir))
	if out := mustRun(t, "param", "list", "core", "--app-dir", dir); out != "COMPONENT  PARAM   VALUE  SOURCE\ncore       labels  {}     default\n" {
		t.Errorf("param list core:\n%s", out)
	}
	var list []app.ParamValue
	if err := json.Unmarshal([]byte(mustRun(t, "param", "list", "notebook", "-o", "json", "--app-dir", dir)), &list); err != nil {
		t.Fatal(err)
	}
	want := app.ParamValue{Component: "notebook", Param: "image", Value: "example.com/course:2024", Default: "example.com/notebook:1", Source: "app.yaml"}
	if len(list) != 7 || list[3] != want || !list[6].Unknown {
		t.Errorf("param list notebook -o json: %+v", list)
	}
	mustFail(t, []string{`component "jupyter" is not in`, "core, notebook, static"}, "param", "list", "jupyter", "--app-dir", dir)
	mustFail(t, []string{"app.yaml not found", "kfdeploy init"}, "param", "list", "--app-dir", t.TempDir())
}

// unreachableKubeconfig points at a loopback port nothing serves.
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: me, user: {token: t}}]
contexts: [{name: gone, context: {cluster: gone, user: me}}]
current-context: gone
`

func TestBadInput(t *testing.T) {
	t.Run("generate without app.yaml", func(t *testing.T) {
		mustFail(t, []string{"app.yaml not found", "kfdeploy init"}, "generate", "--app-dir", t.TempDir())
	})
	t.Run("unknown field in app.yaml", func(t *testing.T) {
		dir := newApp(t)
		write(t, filepath.Join(dir, "app.yaml"), strings.Replace(appYAML, "  - name: core\n", "  - name: core\n    parms: {}\n", 1))
		err := mustFail(t, []string{"parms"}, "generate", "--app-dir", dir)
		if !regexp.MustCompile(`app\.yaml:14: .*parms`).MatchString(err.Error()) {
			t.Errorf("error %q does not point at app.yaml:14", err)
		}
	})
	t.Run("jsonnet syntax error", func(t *testing.T) {
		dir := newApp(t)
		write(t, filepath.Join(dir, "components", "broken.jsonnet"), "{\n  description: 'x',\n  render(p, env):: [,\n}\n")
		write(t, filepath.Join(dir, "app.yaml"), strings.Replace(appYAML, "  - {name: static}\n", "  - {name: static}\n  - name: broken\n", 1))
		err := mustFail(t, nil, "generate", "--app-dir", dir)
		if !regexp.MustCompile(`components/broken\.jsonnet:3:`).MatchString(err.Error()) {
			t.Errorf("error %q does not point at components/broken.jsonnet:3:", err)
		}
		if _, statErr := os.Stat(filepath.Join(dir, "manifests")); statErr == nil {
			t.Error("a failed generate wrote manifests/")
		}
		// The catalogue still lists everything, the broken component with its error.
		out := mustRun(t, "components", "--app-dir", dir)
		if !regexp.MustCompile(`(?m)^broken\s+components/broken\.jsonnet\s.*components/broken\.jsonnet:3:`).MatchString(out) {
			t.Errorf("components does not show where broken.jsonnet fails:\n%s", out)
		}
		mustFail(t, []string{"components/broken.jsonnet:3:"}, "components", "show", "broken", "--app-dir", dir)
	})
	t.Run("apply to an unreachable API server", func(t *testing.T) {
		dir := newApp(t)
		mustRun(t, "generate", "--app-dir", dir)
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		write(t, kubeconfig, unreachableKubeconfig)
		mustFail(t, []string{"cannot reach", "https://127.0.0.1:1"},
			"apply", "--app-dir", dir, "--kubeconfig", kubeconfig, "--server", "https://127.0.0.1:1", "--cache-dir", t.TempDir())
	})
	t.Run("apply with a kubeconfig that names no cluster", func(t *testing.T) {
		dir := newApp(t)
		mustRun(t, "generate", "--app-dir", dir)
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		write(t, kubeconfig, "apiVersion: v1\nkind: Config\n")
		mustFail(t, []string{"no cluster configured", "KUBECONFIG"}, "apply", "--app-dir", dir, "--kubeconfig", kubeconfig)
	})
	t.Run("apply with a relative --nfs-path is refused before connecting", func(t *testing.T) {
		dir := newApp(t)
		mustRun(t, "generate", "--app-dir", dir)
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		write(t, kubeconfig, unreachableKubeconfig)
		err := mustFail(t, []string{"--nfs-path must be absolute", `path "exports/data"`},
			"apply", "--app-dir", dir, "--kubeconfig", kubeconfig, "--nfs-server", "127.0.0.1", "--nfs-path", "exports/data")
		if strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("apply contacted the cluster before validating its flags: %v", err)
		}
	})
	t.Run("delete --purge without a terminal needs --yes, before connecting", func(t *testing.T) {
		dir := newApp(t)
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		write(t, kubeconfig, unreachableKubeconfig)
		err := mustFail(t, []string{"--purge", "no terminal", "--yes"}, "delete", "--purge", "--app-dir", dir, "--kubeconfig", kubeconfig)
		if strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("delete contacted the cluster before validating its flags: %v", err)
		}
		// With --yes it goes on to the cluster (unreachable here).
		mustFail(t, []string{"cannot reach"}, "delete", "--purge", "--yes", "--app-dir", dir, "--kubeconfig", kubeconfig)
	})
	t.Run("init over an existing app", func(t *testing.T) {
		dir := newApp(t)
		mustFail(t, []string{"already exists", "refusing to overwrite"}, "init", dir, "--platform", "none")
		if read(t, filepath.Join(dir, "app.yaml")) != appYAML {
			t.Error("init changed the existing app.yaml")
		}
	})
	t.Run("unknown preset", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "lab")
		mustFail(t, []string{`unknown preset "huge"`, "presets: "}, "init", dir, "--platform", "none", "--preset", "huge")
		if _, err := os.Stat(dir); err == nil {
			t.Error("init with an unknown preset created the app directory")
		}
	})
	t.Run("unknown component", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "lab")
		mustFail(t, []string{"unknown components nope", "built-in components: ", "jupyter"}, "init", dir, "--platform", "none", "--components", "core,nope")
		if _, err := os.Stat(dir); err == nil {
			t.Error("init with an unknown component created the app directory")
		}
	})
	t.Run("init then generate", func(t *testing.T) {
		// The happy path these errors stand beside: the default app renders.
		dir := filepath.Join(t.TempDir(), "lab")
		mustRun(t, "init", dir, "--platform", "none")
		if _, err := config.Load(dir); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "generate", "--app-dir", dir)
	})
}
