package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// The login of the tests' docker config: nothing but secrets.yaml and the resolved Secret may
// hold it.
const (
	pullUser     = "mirror-bot"
	pullPassword = "pw-2f9c1e7b-never-in-manifests"
)

var pullAuth = base64.StdEncoding.EncodeToString([]byte(pullUser + ":" + pullPassword))

func dockerConfig() string {
	return `{"auths": {"registry.local:5000": {"auth": "` + pullAuth + `"}}}`
}

// newPullApp inits an app of preset with two pull secrets: regcred (made by the operator) and
// mirror-login (from the docker config file mirror-auth.json).
func newPullApp(t *testing.T, preset string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pulls")
	if _, err := Init(InitOptions{Dir: dir, Platform: config.PlatformNone, Namespace: "kubeflow", Preset: preset}); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][3]string{{"nfs-provisioner", "server", "nfs.example.com"}, {"nfs-provisioner", "path", "/srv/nfs"}} {
		if _, err := SetParam(dir, p[0], p[1], p[2]); err != nil && !strings.Contains(err.Error(), "nfs-provisioner") {
			t.Fatal(err)
		}
	}
	appendAppYAML(t, dir, "  images:\n    registry: registry.local:5000/kf\n    pullSecrets:\n      - regcred\n      - name: mirror-login\n        file: mirror-auth.json\n")
	writeFile(t, filepath.Join(dir, "mirror-auth.json"), dockerConfig())
	return dir
}

func appendAppYAML(t *testing.T, dir, text string) {
	t.Helper()
	path := filepath.Join(dir, config.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data)+text)
}

var pullNames = []string{"regcred", "mirror-login"}

// pullSecretsOf lists the names of a pod spec's (or ServiceAccount's, or Workflow spec's)
// imagePullSecrets.
func pullSecretsOf(holder map[string]any) []string {
	var out []string
	list, _ := holder["imagePullSecrets"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func hasPullSecrets(names []string) bool {
	for _, n := range pullNames {
		if !slices.Contains(names, n) {
			return false
		}
	}
	return true
}

// walkPodSpecs calls visit with every pod spec inside v: any mapping with a containers list,
// whatever its images; and images with every container-like mapping (an image field) outside a
// pod spec.
func walkPodSpecs(v any, path string, visit func(path string, spec map[string]any), loose func(path, image string)) {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["containers"].([]any); ok {
			visit(path, t)
			return
		}
		if img, ok := t["image"].(string); ok && loose != nil {
			loose(path, img)
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkPodSpecs(t[k], path+"."+k, visit, loose)
		}
	case []any:
		for i, e := range t {
			walkPodSpecs(e, fmt.Sprintf("%s[%d]", path, i), visit, loose)
		}
	}
}

// TestPullSecretsReachEveryPodOfTheFullPreset: with spec.images.pullSecrets, every pod spec of
// every object of the full preset — and every pod spec inside the components' configuration
// (ConfigMaps: templates, controller defaults) — names the pull secrets, every ServiceAccount
// of the namespace carries them, and every controller configuration that starts pods from an
// image passes them on. A ConfigMap that names an image outside a pod spec and has no known
// route fails the test, so a new controller configuration cannot go unnoticed.
func TestPullSecretsReachEveryPodOfTheFullPreset(t *testing.T) {
	dir := newPullApp(t, "full")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	objs, err := LoadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string][]string{}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			accounts[o.GetName()] = pullSecretsOf(o.Object)
		}
	}

	// The controller configurations that start pods from images of their own, and how each
	// passes the pull secrets on; checked below for every ConfigMap key listed.
	routes := map[string]func(t *testing.T, doc map[string]any, raw string){
		// Argo: workflow defaults, merged into every Workflow (config/config.go@v3.7.18).
		"workflow-controller-configmap/workflowDefaults": func(t *testing.T, doc map[string]any, _ string) {
			spec, _ := doc["spec"].(map[string]any)
			if !hasPullSecrets(pullSecretsOf(spec)) {
				t.Errorf("workflowDefaults.spec.imagePullSecrets = %v, want %v", pullSecretsOf(spec), pullNames)
			}
		},
		"workflow-controller-configmap/executor": nil, // resources and security only
		// Katib: suggestion services run as a ServiceAccount that carries them; metrics
		// collectors and early stopping run in the trial and suggestion pods.
		"katib-config/katib-config.yaml": func(t *testing.T, doc map[string]any, _ string) {
			rt, _ := doc["runtime"].(map[string]any)
			sugg, _ := rt["suggestions"].([]any)
			if len(sugg) == 0 {
				t.Fatalf("katib-config has no suggestions")
			}
			for _, s := range sugg {
				sa, _ := s.(map[string]any)["serviceAccountName"].(string)
				if sa == "" || !hasPullSecrets(accounts[sa]) {
					t.Errorf("katib-config suggestion %v: serviceAccountName %q (pull secrets %v), want an account of the app carrying %v", s.(map[string]any)["algorithmName"], sa, accounts[sa], pullNames)
				}
			}
		},
		// JupyterHub: KubeSpawner's image_pull_secrets from settings.json.
		"jupyterhub-config/settings.json": func(t *testing.T, doc map[string]any, _ string) {
			var names []string
			for _, n := range doc["imagePullSecrets"].([]any) {
				names = append(names, n.(string))
			}
			if !hasPullSecrets(names) {
				t.Errorf("jupyterhub settings.json imagePullSecrets = %v, want %v", names, pullNames)
			}
		},
		"jupyterhub-config/jupyterhub_config.py": func(t *testing.T, _ map[string]any, raw string) {
			if !strings.Contains(raw, `c.KubeSpawner.image_pull_secrets = settings["imagePullSecrets"]`) {
				t.Errorf("jupyterhub_config.py does not give KubeSpawner the pull secrets")
			}
		},
	}
	seenRoutes := map[string]bool{}
	specs := 0
	checkSpecs := func(where string, v any) {
		walkPodSpecs(v, "", func(path string, spec map[string]any) {
			specs++
			if !hasPullSecrets(pullSecretsOf(spec)) {
				t.Errorf("%s%s: pod spec has imagePullSecrets %v, want %v", where, path, pullSecretsOf(spec), pullNames)
			}
		}, nil)
	}
	for _, o := range objs {
		id := manifest.IDOf(o)
		if o.GetNamespace() != "kubeflow" && o.GetNamespace() != "" {
			t.Errorf("%s is outside the app's namespace: its pods could not read the pull secrets", id)
		}
		checkSpecs(id.String(), o.Object)
		if o.GetKind() == "ServiceAccount" && !hasPullSecrets(pullSecretsOf(o.Object)) {
			t.Errorf("%s: imagePullSecrets %v, want %v", id, pullSecretsOf(o.Object), pullNames)
		}
		if o.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for key, raw := range data {
			where := o.GetName() + "/" + key
			var doc any
			if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
				doc = nil // not YAML or JSON (a script): only a route can check it
			}
			checkSpecs(id.String()+" "+key, doc)
			route, known := routes[where]
			if known {
				seenRoutes[where] = true
				if route != nil {
					m, _ := doc.(map[string]any)
					route(t, m, raw)
				}
				continue
			}
			walkPodSpecs(doc, "", func(string, map[string]any) {}, func(path, image string) {
				t.Errorf("ConfigMap %s names image %s at %s outside a pod spec, and no route passes the pull secrets on to what starts it: add one to the component and to this test", where, image, path)
			})
		}
	}
	for where := range routes {
		if !seenRoutes[where] {
			t.Errorf("route %s: no such ConfigMap key was rendered", where)
		}
	}
	if specs < 20 {
		t.Errorf("found %d pod specs in the full preset, expected many more: the walk is broken", specs)
	}
	if role := findObject(objs, "Role", "katib-suggestion"); role == nil {
		t.Errorf("no Role katib-suggestion: Katib's early stopping would not update Trials as the suggestion account")
	}
	t.Logf("%d pod specs, %d ServiceAccounts, %d controller routes carry %v", specs, len(accounts), len(seenRoutes), pullNames)
}

func findObject(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// TestPullSecretFromDockerConfig: a pull secret with a file becomes a dockerconfigjson Secret
// whose manifests hold a placeholder and whose contents are in secrets.yaml alone; apply's
// objects hold the file's contents; the file may be removed after generate; and a file whose
// login the cluster cannot use is refused without quoting it.
func TestPullSecretFromDockerConfig(t *testing.T) {
	dir := newPullApp(t, "minimal")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	for path, content := range readTree(t, filepath.Join(dir, ManifestsDir)) {
		if strings.Contains(content, pullAuth) || strings.Contains(content, pullPassword) {
			t.Errorf("%s holds the docker config's login", path)
		}
	}
	objs, err := LoadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := findObject(objs, "Secret", "mirror-login")
	if s == nil {
		t.Fatal("no Secret mirror-login in the manifests")
	}
	if typ, _, _ := unstructured.NestedString(s.Object, "type"); typ != "kubernetes.io/dockerconfigjson" {
		t.Errorf("Secret mirror-login of type %q", typ)
	}
	if ph, _, _ := unstructured.NestedString(s.Object, "stringData", ".dockerconfigjson"); ph != secrets.Placeholder("image-pull", "mirror-login") {
		t.Errorf("manifest holds %q, want the placeholder", ph)
	}
	if findObject(objs, "Secret", "regcred") != nil {
		t.Error("kfdeploy made Secret regcred, which the operator creates")
	}
	resolved := func() string {
		t.Helper()
		l, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, _, _ := unstructured.NestedString(findObject(l.Objects, "Secret", "mirror-login").Object, "stringData", ".dockerconfigjson")
		return v
	}
	if got := resolved(); got != dockerConfig() {
		t.Errorf("resolved Secret holds %q, want the docker config file", got)
	}

	// Removed after generate: the stored copy serves.
	if err := os.Remove(filepath.Join(dir, "mirror-auth.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatalf("generate without the docker config file: %v", err)
	}
	if got := resolved(); got != dockerConfig() {
		t.Errorf("after the file was removed the Secret holds %q", got)
	}

	// A credential helper's config holds no login the kubelet could use.
	writeFile(t, filepath.Join(dir, "mirror-auth.json"), `{"credsStore": "desktop", "auths": {}, "x": "`+pullPassword+`"}`)
	_, err = Generate(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "app.yaml:") || !strings.Contains(err.Error(), "mirror-auth.json") || !strings.Contains(err.Error(), "credential helper") {
		t.Errorf("generate with a credential helper's config: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), pullPassword) {
		t.Errorf("the error quotes the file: %v", err)
	}

	// Neither the file nor a stored copy: the error says how to make the file.
	dir2 := newPullApp(t, "minimal")
	if err := os.Remove(filepath.Join(dir2, "mirror-auth.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), dir2); err == nil || !strings.Contains(err.Error(), "skopeo login --authfile") {
		t.Errorf("generate without the file or a stored copy: %v", err)
	}
}

// TestMirrorScriptChecksTheLogin: with pull secrets, the copy script names them and stops
// before its first copy unless skopeo is logged in to the mirror; it never holds a credential.
func TestMirrorScriptChecksTheLogin(t *testing.T) {
	dir := newPullApp(t, "minimal")
	rep, err := ListImages(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	header, prelude, err := rep.MirrorLogin("mirror.example.com:5000/kf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(append(header, prelude...), "\n")
	for _, want := range []string{"regcred", "mirror-login (from docker config mirror-auth.json)", "skopeo login mirror.example.com:5000", "skopeo login --get-login mirror.example.com:5000"} {
		if !strings.Contains(text, want) {
			t.Errorf("login lines lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, pullAuth) || strings.Contains(text, pullPassword) {
		t.Errorf("login lines hold a credential:\n%s", text)
	}
	rep.PullSecrets = nil
	if h, p, err := rep.MirrorLogin("mirror.example.com:5000/kf"); err != nil || h != nil || p != nil {
		t.Errorf("without pull secrets: %v %v %v, want nothing", h, p, err)
	}
}
