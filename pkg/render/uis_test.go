package render

// Render tests of the user interfaces (jupyterhub, tf-job-dashboard, centraldashboard,
// k8s-dashboard) against facts read from each upstream project at the pinned release; every fact
// names the file@tag it comes from.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// ---------------------------------------------------------------------------------------------
// Helpers

func uisHas(objs []*unstructured.Unstructured, kind, name string) bool {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return true
		}
	}
	return false
}

func uisContainer(t *testing.T, workload *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	pod, _ := podSpec(workload)
	for _, c := range asSlice(pod["containers"]) {
		if c := asMap(c); c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s has no container %s", manifest.IDOf(workload), name)
	return nil
}

func uisStrings(v any) []string {
	var out []string
	for _, s := range asSlice(v) {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// uisEnv returns the container's variable: its value, or "secret:NAME/KEY", "field:PATH".
func uisEnv(c map[string]any, name string) (string, bool) {
	for _, e := range asSlice(c["env"]) {
		e := asMap(e)
		if e["name"] != name {
			continue
		}
		if v, ok := e["value"].(string); ok {
			return v, true
		}
		if ref := asMap(asMap(e["valueFrom"])["secretKeyRef"]); ref != nil {
			return fmt.Sprintf("secret:%s/%s", ref["name"], ref["key"]), true
		}
		if ref := asMap(asMap(e["valueFrom"])["fieldRef"]); ref != nil {
			return fmt.Sprintf("field:%s", ref["fieldPath"]), true
		}
	}
	return "", false
}

// uisMappings: every Emissary Mapping the component's Services carry.
func uisMappings(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, o := range objs {
		for _, r := range emissaryDocs(t, o) {
			if r["kind"] == "Mapping" {
				out = append(out, r)
			}
		}
	}
	return out
}

// uisVersionAtLeast compares dotted versions ("v0.45.0", "5.5.0").
func uisVersionAtLeast(t *testing.T, version, min string) bool {
	t.Helper()
	parse := func(v string) []int {
		var out []int
		for _, p := range strings.Split(strings.TrimPrefix(v, "v"), ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("version %q: %v", v, err)
			}
			out = append(out, n)
		}
		return out
	}
	a, b := parse(version), parse(min)
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) >= len(b)
}

func uisTag(image string) string {
	return image[strings.LastIndex(image, ":")+1:]
}

// ---------------------------------------------------------------------------------------------
// jupyterhub

// What the Zero to JupyterHub hub image ships, per chart release (images/hub/requirements.txt at
// each tag of github.com/jupyterhub/zero-to-jupyterhub-k8s).
var z2jhHub = map[string]struct{ jupyterhub, idleCuller string }{
	"4.1.0": {jupyterhub: "5.2.1", idleCuller: "1.4.0"}, // images/hub/requirements.txt@4.1.0
	"4.4.0": {jupyterhub: "5.5.0", idleCuller: "1.4.0"}, // images/hub/requirements.txt@4.4.0
}

const (
	// jupyterhub/authenticators/shared.py first appears in JupyterHub 5.3.0 and registers the
	// "shared-password" entry point (pyproject.toml@5.5.0).
	sharedPasswordSince = "5.3.0"
	// SharedPasswordAuthenticator._USER_PASSWORD_MIN_LENGTH and _ADMIN_PASSWORD_MIN_LENGTH
	// (jupyterhub/authenticators/shared.py@5.5.0).
	userPasswordMinLength  = 8
	adminPasswordMinLength = 32
)

// The options jupyterhub_idle_culler defines (main() in jupyterhub_idle_culler/__init__.py@1.4.0)
// and the scopes it needs without --cull-users (README.md@1.4.0, "Permissions").
var (
	idleCullerOptions = []string{"url", "timeout", "cull_every", "max_age", "cull_users", "remove_named_servers",
		"concurrency", "ssl_enabled", "internal_certs_location", "cull_admin_users", "api_page_size",
		"cull_default_servers", "cull_named_servers"}
	idleCullerScopes = []string{"list:users", "read:users:activity", "read:servers", "delete:servers"}
)

// hubConfig runs the rendered jupyterhub_config.py with python3 against a recording stand-in for
// traitlets' config object and returns what it configured.
func hubConfig(t *testing.T, objs []*unstructured.Unstructured, env map[string]string) map[string]any {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot evaluate jupyterhub_config.py")
	}
	dir := t.TempDir()
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "jupyterhub-config").Object, "data")
	for name, content := range data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const recorder = `
import json, runpy, sys

class Section:
    def __init__(self):
        object.__setattr__(self, "_values", {})
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._values.setdefault(name, Section())
    def __setattr__(self, name, value):
        self._values[name] = value

def plain(v):
    if isinstance(v, Section):
        return {k: plain(x) for k, x in v._values.items()}
    if isinstance(v, (set, frozenset)):
        return sorted(plain(x) for x in v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v

c = Section()
runpy.run_path(sys.argv[1], init_globals={"get_config": lambda: c})
json.dump(plain(c), sys.stdout)
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", recorder, filepath.Join(dir, "jupyterhub_config.py"))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		t.Fatalf("jupyterhub_config.py: %v\n%s", err, stderr)
	}
	var config map[string]any
	if err := json.Unmarshal(out, &config); err != nil {
		t.Fatalf("jupyterhub_config.py output: %v", err)
	}
	return config
}

func hubEnv() map[string]string {
	return map[string]string{
		"POD_NAMESPACE":           "kubeflow",
		"CONFIGPROXY_AUTH_TOKEN":  "proxy-token-value",
		"KFDEPLOY_USER_PASSWORD":  "user-password-value",
		"KFDEPLOY_ADMIN_PASSWORD": strings.Repeat("a", adminPasswordMinLength),
	}
}

// TestJupyterHubAuthenticatorInHubImage: the authenticator the configuration names exists in the
// JupyterHub that the hub image ships (k8s-hub 4.1.0 had 5.2.1, before shared-password).
func TestJupyterHubAuthenticatorInHubImage(t *testing.T) {
	objs := render(t, "jupyterhub", nil)
	config := hubConfig(t, objs, hubEnv())
	if got := asMap(config["JupyterHub"])["authenticator_class"]; got != "shared-password" {
		t.Fatalf("authenticator_class %v; this test knows the shared-password requirements only", got)
	}
	hub := uisContainer(t, find(t, objs, "StatefulSet", "tf-hub"), "hub")
	image := hub["image"].(string)
	ships, ok := z2jhHub[uisTag(image)]
	if !ok {
		t.Fatalf("hub image %s: add what this Zero to JupyterHub release ships (images/hub/requirements.txt at its tag) to z2jhHub", image)
	}
	if !uisVersionAtLeast(t, ships.jupyterhub, sharedPasswordSince) {
		t.Errorf("hub image %s ships JupyterHub %s; the shared-password authenticator needs %s or later", image, ships.jupyterhub, sharedPasswordSince)
	}
	if ships.idleCuller == "" {
		t.Errorf("hub image %s ships no jupyterhub-idle-culler", image)
	}
}

// TestJupyterHubPasswords: admin users get the admin password from the component's Secret, and
// the generated values meet the authenticator's minimum lengths.
func TestJupyterHubPasswords(t *testing.T) {
	for _, admins := range [][]any{nil, {"alice"}} {
		t.Run(fmt.Sprintf("adminUsers=%v", admins), func(t *testing.T) {
			params := map[string]any{}
			if admins != nil {
				params["adminUsers"] = admins
			}
			objs := render(t, "jupyterhub", params)
			env := hubEnv()
			config := hubConfig(t, objs, env)
			auth := asMap(config["SharedPasswordAuthenticator"])
			if auth["user_password"] != env["KFDEPLOY_USER_PASSWORD"] {
				t.Errorf("user_password not taken from KFDEPLOY_USER_PASSWORD: %v", auth["user_password"])
			}
			_, hasAdmin := auth["admin_password"]
			if hasAdmin != (len(admins) > 0) {
				t.Errorf("admin_password set: %v, want it exactly when there are admin users (shared.py@5.5.0: admin users can sign in only with it; without admin users it only warns)", hasAdmin)
			}
			if got := uisStrings(asMap(config["Authenticator"])["admin_users"]); len(got) != len(admins) {
				t.Errorf("admin_users %v, want %v", got, admins)
			}
			hub := uisContainer(t, find(t, objs, "StatefulSet", "tf-hub"), "hub")
			for variable, key := range map[string]string{"KFDEPLOY_USER_PASSWORD": "user-password", "KFDEPLOY_ADMIN_PASSWORD": "admin-password"} {
				if got, _ := uisEnv(hub, variable); got != "secret:jupyterhub/"+key {
					t.Errorf("hub %s = %q, want secret:jupyterhub/%s", variable, got, key)
				}
			}

			// What apply writes: the placeholders resolved from a fresh secrets store.
			store, err := secrets.Load(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for name := range goldenEnv(t, "jupyterhub").Secrets {
				if _, err := store.Ensure("jupyterhub", name); err != nil {
					t.Fatal(err)
				}
			}
			resolved, err := store.Resolve([]*unstructured.Unstructured{find(t, objs, "Secret", "jupyterhub")})
			if err != nil {
				t.Fatal(err)
			}
			data, _, _ := unstructured.NestedStringMap(resolved[0].Object, "stringData")
			if n := len(data["user-password"]); n < userPasswordMinLength {
				t.Errorf("generated user password has %d characters; shared.py@5.5.0 wants at least %d", n, userPasswordMinLength)
			}
			if n := len(data["admin-password"]); n < adminPasswordMinLength {
				t.Errorf("generated admin password has %d characters; shared.py@5.5.0 wants at least %d", n, adminPasswordMinLength)
			}
			if data["admin-password"] == data["user-password"] {
				t.Error("admin and user passwords are equal; shared.py@5.5.0 refuses that")
			}
		})
	}
}

// TestJupyterHubIdleCuller: the culler runs as a hub service with the options it defines, the
// scopes it needs, and the hub's API address.
func TestJupyterHubIdleCuller(t *testing.T) {
	objs := render(t, "jupyterhub", map[string]any{"cullTimeout": 1800})
	config := hubConfig(t, objs, hubEnv())
	hub := asMap(config["JupyterHub"])
	services := asSlice(hub["services"])
	if len(services) != 1 {
		t.Fatalf("services %v, want the idle culler", services)
	}
	service := asMap(services[0])
	command := uisStrings(service["command"])
	if len(command) < 3 || !reflect.DeepEqual(command[:3], []string{"python3", "-m", "jupyterhub_idle_culler"}) {
		t.Fatalf("culler command %v", command)
	}
	known := map[string]bool{}
	for _, o := range idleCullerOptions {
		known[o] = true
	}
	options := map[string]string{}
	for _, arg := range command[3:] {
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		name = strings.ReplaceAll(name, "-", "_") // tornado.options accepts either spelling
		if !known[name] {
			t.Errorf("culler option %s is not defined by jupyterhub_idle_culler 1.4.0", arg)
		}
		options[name] = value
	}
	if options["timeout"] != "1800" {
		t.Errorf("--timeout=%s, want cullTimeout 1800", options["timeout"])
	}
	api, err := url.Parse(options["url"])
	if err != nil {
		t.Fatal(err)
	}
	hubPort := ""
	for _, p := range asSlice(uisContainer(t, find(t, objs, "StatefulSet", "tf-hub"), "hub")["ports"]) {
		hubPort = fmt.Sprint(asMap(p)["containerPort"])
	}
	if api.Port() != hubPort || api.Path != "/hub/api" {
		t.Errorf("culler --url=%s, want the hub's API on its port %s at /hub/api", options["url"], hubPort)
	}
	var scopes []string
	for _, r := range asSlice(hub["load_roles"]) {
		r := asMap(r)
		if reflect.DeepEqual(uisStrings(r["services"]), []string{service["name"].(string)}) {
			scopes = uisStrings(r["scopes"])
		}
	}
	sort.Strings(scopes)
	want := append([]string(nil), idleCullerScopes...)
	sort.Strings(want)
	if !reflect.DeepEqual(scopes, want) {
		t.Errorf("culler role scopes %v, want %v (README.md@1.4.0)", scopes, want)
	}

	off := hubConfig(t, render(t, "jupyterhub", map[string]any{"cullIdle": false}), hubEnv())
	if s := asMap(off["JupyterHub"])["services"]; s != nil {
		t.Errorf("cullIdle false still runs services %v", s)
	}
	for _, bad := range []any{30, 90.5} {
		if _, err := library().Render("jupyterhub", map[string]any{"cullTimeout": bad}, goldenEnv(t, "jupyterhub")); err == nil || !strings.Contains(err.Error(), "cullTimeout must be a whole number of seconds >= 60") {
			t.Errorf("cullTimeout %v: error %v, want one naming cullTimeout", bad, err)
		}
	}
}

// TestJupyterHubGPUProfiles: the GPU profile still requests and limits the GPU resource.
func TestJupyterHubGPUProfiles(t *testing.T) {
	config := hubConfig(t, render(t, "jupyterhub", nil), hubEnv())
	gpus := 0
	for _, p := range asSlice(asMap(config["KubeSpawner"])["profile_list"]) {
		override := asMap(asMap(p)["kubespawner_override"])
		if limit := asMap(override["extra_resource_limits"])["nvidia.com/gpu"]; limit != nil {
			gpus++
			if asMap(override["extra_resource_guarantees"])["nvidia.com/gpu"] != limit {
				t.Errorf("profile %v: GPU guarantee differs from its limit", asMap(p)["display_name"])
			}
		}
	}
	if gpus == 0 {
		t.Error("no spawner profile requests nvidia.com/gpu")
	}
}

// TestJupyterHubImages: tini stays PID 1 in the hub (images/hub/Dockerfile@4.4.0: ENTRYPOINT
// ["tini", "--"]) so that it reaps the culler; the proxy is the one the chart pins
// (jupyterhub/values.yaml@4.4.0: proxy.chp.image.tag "5.2.0") and gets only flags
// configurable-http-proxy 5.2.0 defines (bin/configurable-http-proxy@5.2.0).
func TestJupyterHubImages(t *testing.T) {
	objs := render(t, "jupyterhub", nil)
	hub := uisContainer(t, find(t, objs, "StatefulSet", "tf-hub"), "hub")
	if _, ok := hub["command"]; ok {
		t.Errorf("hub sets command %v, replacing the image's tini entrypoint; set args", hub["command"])
	}
	proxy := uisContainer(t, find(t, objs, "Deployment", "tf-hub-proxy"), "proxy")
	if tag := uisTag(proxy["image"].(string)); tag != "5.2.0" {
		t.Errorf("proxy image tag %s, want the chart's 5.2.0", tag)
	}
	chpFlags := map[string]bool{"ip": true, "port": true, "api-ip": true, "api-port": true, "default-target": true, "error-target": true}
	for _, arg := range uisStrings(proxy["command"])[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !chpFlags[name] {
			t.Errorf("proxy flag %s: not among the configurable-http-proxy 5.2.0 flags this component relies on", arg)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// tf-job-dashboard (Headlamp)

// Flags Headlamp defines (backend/pkg/config/config.go@v0.45.0) that the component may pass.
var headlampFlags = map[string]bool{"in-cluster": true, "in-cluster-context-name": true, "base-url": true, "watch-plugins-changes": true, "plugins-dir": true, "html-static-dir": true}

// TestHeadlampStaticCopy: Headlamp rewrites index.html for the base URL at every start and exits
// when it cannot. Up to v0.29 it wrote into the static directory of the image; from v0.30.0 it
// first copies that directory under os.TempDir() (copyStaticFiles, added by "backend: Fix
// headless mode", backend/cmd/headlamp.go@v0.45.0). A read-only root filesystem therefore needs
// v0.30.0 or later and a writable temporary directory.
func TestHeadlampStaticCopy(t *testing.T) {
	objs := render(t, "tf-job-dashboard", nil)
	deployment := find(t, objs, "Deployment", "tf-job-dashboard")
	c := uisContainer(t, deployment, "headlamp")
	if readOnly, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !readOnly {
		return
	}
	if tag := uisTag(c["image"].(string)); !uisVersionAtLeast(t, tag, "v0.30.0") {
		t.Errorf("Headlamp %s rewrites its static directory in the image; with a read-only root it exits", tag)
	}
	tmp := "/tmp"
	if v, ok := uisEnv(c, "TMPDIR"); ok {
		tmp = v
	}
	pod, _ := podSpec(deployment)
	for _, m := range asSlice(c["volumeMounts"]) {
		m := asMap(m)
		if m["mountPath"] != tmp || m["readOnly"] == true {
			continue
		}
		for _, v := range asSlice(pod["volumes"]) {
			if v := asMap(v); v["name"] == m["name"] && v["emptyDir"] != nil {
				if config, ok := uisEnv(c, "XDG_CONFIG_HOME"); ok && !strings.HasPrefix(config, tmp+"/") {
					t.Errorf("XDG_CONFIG_HOME %s is not on the writable %s", config, tmp)
				}
				return
			}
		}
	}
	t.Errorf("read-only root without a writable emptyDir at %s for Headlamp's static copy", tmp)
}

// TestHeadlampInCluster: in-cluster, under the route's base URL, probed there, with no
// permissions of its own and never the service account's token for users.
func TestHeadlampInCluster(t *testing.T) {
	objs := render(t, "tf-job-dashboard", nil)
	c := uisContainer(t, find(t, objs, "Deployment", "tf-job-dashboard"), "headlamp")
	args := map[string]string{}
	for _, a := range uisStrings(c["args"]) {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !headlampFlags[name] {
			t.Errorf("flag %s is not a Headlamp v0.45.0 flag this component expects", a)
		}
		args[name] = value
	}
	if _, ok := args["in-cluster"]; !ok {
		t.Error("Headlamp not in in-cluster mode")
	}
	// Without a context name Headlamp reads kube-system/kubeadm-config with its own account,
	// which has no permissions (deriveInClusterName, backend/pkg/kubeconfig/kubeconfig.go@v0.45.0).
	if args["in-cluster-context-name"] == "" {
		t.Error("no -in-cluster-context-name: Headlamp would read kube-system/kubeadm-config without permission")
	}
	if _, ok := args["unsafe-use-service-account-token"]; ok {
		t.Error("Headlamp would act for every user with its own account")
	}
	mappings := uisMappings(t, objs)
	if len(mappings) != 1 {
		t.Fatalf("mappings %v", mappings)
	}
	prefix := mappings[0]["prefix"].(string)
	if args["base-url"]+"/" != prefix || mappings[0]["rewrite"] != "" {
		t.Errorf("-base-url=%s but the route is %s (rewrite %v): Headlamp must see the prefix it serves under", args["base-url"], prefix, mappings[0]["rewrite"])
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if path, _, _ := unstructured.NestedString(c, probe, "httpGet", "path"); path != prefix {
			t.Errorf("%s path %s, want %s", probe, path, prefix)
		}
	}
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		for _, s := range asSlice(o.Object["subjects"]) {
			if asMap(s)["name"] == "tf-job-dashboard" {
				t.Errorf("%s binds Headlamp's own service account; it acts with the user's token", manifest.IDOf(o))
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// centraldashboard

// TestCentralDashboardEnvironment: the variables the dashboard reads
// (components/centraldashboard/app/server.ts and app/k8s_service.ts@v2.0.0) point at what the
// component renders: its ConfigMap (read in POD_NAMESPACE, default "kubeflow"), and a KFAM API
// inside the pod.
func TestCentralDashboardEnvironment(t *testing.T) {
	objs := render(t, "centraldashboard", nil)
	deployment := find(t, objs, "Deployment", "centraldashboard")
	c := uisContainer(t, deployment, "centraldashboard")
	if got, _ := uisEnv(c, "POD_NAMESPACE"); got != "field:metadata.namespace" {
		t.Errorf("POD_NAMESPACE %q: the dashboard reads its ConfigMap in that namespace", got)
	}
	name, ok := uisEnv(c, "DASHBOARD_CONFIGMAP")
	if !ok {
		t.Fatal("no DASHBOARD_CONFIGMAP: the dashboard reads ConfigMap dashboard-config, which isn't rendered")
	}
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", name).Object, "data")
	for _, key := range []string{"links", "settings"} {
		var v map[string]any
		if err := json.Unmarshal([]byte(data[key]), &v); err != nil {
			t.Errorf("ConfigMap %s key %s (parsed by app/api.ts): %v", name, key, err)
		}
	}
	readable := false
	for _, r := range asSlice(find(t, objs, "Role", "centraldashboard").Object["rules"]) {
		r := asMap(r)
		if reflect.DeepEqual(uisStrings(r["resources"]), []string{"configmaps"}) && containsString(uisStrings(r["verbs"]), "get") &&
			(r["resourceNames"] == nil || containsString(uisStrings(r["resourceNames"]), name)) {
			readable = true
		}
	}
	if !readable {
		t.Errorf("the dashboard's Role doesn't let it get ConfigMap %s", name)
	}
	if got, _ := uisEnv(c, "REGISTRATION_FLOW"); got != "false" {
		t.Errorf("REGISTRATION_FLOW %q: with no Profiles there is nothing to register", got)
	}

	host, _ := uisEnv(c, "PROFILES_KFAM_SERVICE_HOST")
	port, _ := uisEnv(c, "PROFILES_KFAM_SERVICE_PORT")
	if host != "127.0.0.1" {
		t.Fatalf("PROFILES_KFAM_SERVICE_HOST %q, want the stand-in in the pod (127.0.0.1)", host)
	}
	kfam := uisContainer(t, deployment, "kfam")
	served := false
	for _, p := range asSlice(kfam["ports"]) {
		served = served || fmt.Sprint(asMap(p)["containerPort"]) == port
	}
	if !served {
		t.Errorf("PROFILES_KFAM_SERVICE_PORT %q is no port of the kfam container", port)
	}
	// package.json@v2.0.0: "start": "npm run serve", "serve": "node dist/server.js".
	if got := uisStrings(c["command"]); !reflect.DeepEqual(got[len(got)-2:], []string{"node", "dist/server.js"}) || c["workingDir"] != "/usr/src/app" {
		t.Errorf("dashboard command %v in %v, want node dist/server.js in /usr/src/app", got, c["workingDir"])
	}
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestKFAMStandIn runs the rendered stand-in with node on loopback and checks its answers against
// what the dashboard's client reads (components/centraldashboard/app/api_workgroup.ts@v2.0.0:
// bindings[].user.name, referredNamespace, roleRef.name among admin/edit/view; the clusteradmin
// call returns a boolean).
func TestKFAMStandIn(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: cannot run the KFAM stand-in")
	}
	objs := render(t, "centraldashboard", nil)
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "centraldashboard-kfam").Object, "data")
	var config map[string]any
	if err := json.Unmarshal([]byte(data["config.json"]), &config); err != nil {
		t.Fatal(err)
	}
	config["host"], config["port"] = "127.0.0.1", 0
	dir := t.TempDir()
	configJSON, _ := json.Marshal(config)
	for name, content := range map[string][]byte{"kfam.js": []byte(data["kfam.js"]), "config.json": configJSON} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "kfam.js"), filepath.Join(dir, "config.json"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("stand-in printed nothing: %v", err)
	}
	fields := strings.Fields(line)
	var port string
	for i, f := range fields {
		if f == "port" && i+1 < len(fields) {
			port = fields[i+1]
		}
	}
	base := "http://127.0.0.1:" + port

	get := func(method, path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	type binding struct {
		User              struct{ Kind, Name string }
		ReferredNamespace string
		RoleRef           struct{ Kind, Name string }
	}
	bindings := func(query string) []binding {
		t.Helper()
		code, body := get(http.MethodGet, "/kfam/v1/bindings"+query)
		if code != http.StatusOK {
			t.Fatalf("bindings%s: %d %s", query, code, body)
		}
		var out struct{ Bindings []binding }
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("bindings%s: %v", query, err)
		}
		return out.Bindings
	}

	all := bindings("")
	if len(all) != 1 || all[0].ReferredNamespace != "kubeflow" || all[0].User.Name == "" || all[0].RoleRef.Name != "edit" {
		t.Errorf("anonymous bindings %+v, want the app's namespace kubeflow as edit (shown as contributor)", all)
	}
	if mine := bindings("?user=alice%40example.com"); len(mine) != 1 || mine[0].User.Name != "alice@example.com" {
		t.Errorf("bindings for alice: %+v", mine)
	}
	if other := bindings("?namespace=elsewhere"); len(other) != 0 {
		t.Errorf("bindings of another namespace: %+v", other)
	}
	if owners := bindings("?role=admin"); len(owners) != 0 {
		t.Errorf("owner bindings: %+v", owners)
	}
	code, body := get(http.MethodGet, "/kfam/v1/role/clusteradmin?user=alice%40example.com")
	var admin bool
	if code != http.StatusOK || json.Unmarshal(body, &admin) != nil || admin {
		t.Errorf("clusteradmin: %d %s, want 200 false", code, body)
	}
	if code, body := get(http.MethodPost, "/kfam/v1/bindings"); code != http.StatusNotImplemented || !strings.Contains(string(body), "kubectl") {
		t.Errorf("POST bindings: %d %s, want 501 saying namespaces are managed with kubectl", code, body)
	}
	if code, _ := get(http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
}

// ---------------------------------------------------------------------------------------------
// k8s-dashboard

// The routes of the chart's Kong configuration
// (charts/kubernetes-dashboard/templates/config/gateway.yaml@kubernetes-dashboard-7.13.0): path
// prefix → module.
var dashboardRoutes = map[string]string{
	"/api/v1/login":           "auth",
	"/api/v1/csrftoken/login": "auth",
	"/api/v1/me":              "auth",
	"/api":                    "api",
	"/":                       "web",
}

// TestKubernetesDashboardRoutes: every Kong route exists under /k8s/ui/, to the same module on its
// port 8000 (values.yaml@kubernetes-dashboard-7.13.0), with the path the module expects.
func TestKubernetesDashboardRoutes(t *testing.T) {
	objs := render(t, "k8s-dashboard", nil)
	found := map[string]bool{}
	for _, m := range uisMappings(t, objs) {
		prefix := strings.TrimPrefix(m["prefix"].(string), "/k8s/ui")
		rewrite, ok := m["rewrite"].(string)
		if !ok {
			rewrite = "/" // Emissary's default: the prefix becomes "/"
		}
		if strings.TrimSuffix(prefix, "/") != strings.TrimSuffix(rewrite, "/") {
			t.Errorf("route %s rewrites to %s: the module would see another path", m["prefix"], rewrite)
		}
		key := strings.TrimSuffix(prefix, "/")
		if key == "" {
			key = "/"
		}
		module, ok := dashboardRoutes[key]
		if !ok {
			t.Errorf("route %s is not one of the chart's", m["prefix"])
			continue
		}
		if want := "kubernetes-dashboard-" + module + ".kubeflow:8000"; m["service"] != want {
			t.Errorf("route %s goes to %s, want %s", m["prefix"], m["service"], want)
		}
		found[key] = true
	}
	for path := range dashboardRoutes {
		if !found[path] {
			t.Errorf("the chart's route %s is missing", path)
		}
	}
}

// TestKubernetesDashboardModules: arguments name what the component renders, RBAC covers the
// modules' own API calls, and nothing overrides the images' entrypoints, which bind the HTTP
// port on every address (modules/api/Dockerfile@api/v1.13.0, modules/web/Dockerfile@web/v1.7.0:
// --insecure-bind-address=0.0.0.0; the flag's default is 127.0.0.1).
func TestKubernetesDashboardModules(t *testing.T) {
	objs := render(t, "k8s-dashboard", nil)
	args := func(module string) map[string]string {
		out := map[string]string{}
		c := uisContainer(t, find(t, objs, "Deployment", "kubernetes-dashboard-"+module), module)
		if _, ok := c["command"]; ok {
			t.Errorf("%s overrides the image's entrypoint", module)
		}
		for _, a := range uisStrings(c["args"]) {
			name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			out[name] = value
		}
		return out
	}
	rules := func(role string) []map[string]any {
		var out []map[string]any
		for _, r := range asSlice(find(t, objs, "Role", role).Object["rules"]) {
			out = append(out, asMap(r))
		}
		return out
	}

	// web: --settings-config-map-name (modules/web/pkg/args/args.go@web/v1.7.0), read and saved
	// with web's own account (modules/web/pkg/settings/handler.go: InClusterClient).
	settings := args("web")["settings-config-map-name"]
	if !uisHas(objs, "ConfigMap", settings) {
		t.Errorf("web's settings ConfigMap %q is not rendered", settings)
	}
	if r := rules("kubernetes-dashboard-web"); len(r) != 1 || !reflect.DeepEqual(uisStrings(r[0]["resourceNames"]), []string{settings}) ||
		!reflect.DeepEqual(uisStrings(r[0]["verbs"]), []string{"get", "update"}) {
		t.Errorf("web's Role %v, want get and update on ConfigMap %s", r, settings)
	}

	// api: --metrics-scraper-service-name (modules/api/pkg/args/args.go@api/v1.13.0), reached
	// through the service proxy (charts/.../templates/rbac/api/role.yaml).
	scraper := args("api")["metrics-scraper-service-name"]
	if !uisHas(objs, "Service", scraper) {
		t.Errorf("api's metrics scraper Service %q is not rendered", scraper)
	}
	if r := rules("kubernetes-dashboard-api"); len(r) != 1 || !reflect.DeepEqual(uisStrings(r[0]["resourceNames"]), []string{scraper, "http:" + scraper}) {
		t.Errorf("api's Role %v, want services/proxy get on %s", r, scraper)
	}
	for _, module := range []string{"web", "api"} {
		if ns := args(module)["namespace"]; ns != "kubeflow" {
			t.Errorf("%s --namespace=%s, want the app's namespace", module, ns)
		}
	}
	args("auth")
	args("metrics-scraper")

	// Every module builds its client from the in-cluster config (modules/common/client/init.go:
	// rest.InClusterConfig), which needs the service account token mounted; the scraper keeps
	// its database at /tmp/metrics.db (modules/metrics-scraper/pkg/args/args.go@metrics-scraper/v1.2.2).
	for _, module := range []string{"web", "api", "auth", "metrics-scraper"} {
		d := find(t, objs, "Deployment", "kubernetes-dashboard-"+module)
		pod, _ := podSpec(d)
		if pod["automountServiceAccountToken"] == false || pod["serviceAccountName"] == nil {
			t.Errorf("%s: needs its own service account with a mounted token", module)
		}
		c := uisContainer(t, d, module)
		tmp := false
		for _, m := range asSlice(c["volumeMounts"]) {
			tmp = tmp || asMap(m)["mountPath"] == "/tmp"
		}
		if !tmp {
			t.Errorf("%s: no writable /tmp (the chart mounts an emptyDir there)", module)
		}
		for _, p := range asSlice(c["ports"]) {
			if fmt.Sprint(asMap(p)["containerPort"]) != "8000" {
				t.Errorf("%s serves on 8000, not %v", module, asMap(p)["containerPort"])
			}
		}
	}
}
