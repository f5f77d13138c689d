package render

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// JupyterHub behind the gateway component: users sign in at the gateway only; the hub has no
// password of its own and asks the gateway's sign-in proxy who a request's session belongs to.

// TestJupyterHubBehindGateway: the rendered configuration names the gateway authenticator, asks
// the sign-in proxy the gateway component renders, and holds no password.
func TestJupyterHubBehindGateway(t *testing.T) {
	objs := renderFor(t, "jupyterhub", nil, GatewayAPI)
	env := map[string]string{"POD_NAMESPACE": "kubeflow", "CONFIGPROXY_AUTH_TOKEN": "proxy-token-value"}
	config := hubConfig(t, objs, env) // fails if the configuration reads a password variable

	if got := asMap(config["JupyterHub"])["authenticator_class"]; got != "kfdeploy_gateway_auth.GatewayAuthenticator" {
		t.Errorf("authenticator_class %v, want the gateway authenticator", got)
	}
	if _, ok := config["SharedPasswordAuthenticator"]; ok {
		t.Errorf("SharedPasswordAuthenticator configured behind the gateway: %v", config["SharedPasswordAuthenticator"])
	}
	auth := asMap(config["GatewayAuthenticator"])
	if got := uisStrings(auth["admin_groups"]); strings.Join(got, ",") != "admins" {
		t.Errorf("admin_groups %v, want [admins] (the gateway's adminGroup)", got)
	}

	// The address is the gateway component's oauth2-proxy Service, on its port.
	gateway := renderFor(t, "gateway", nil, GatewayAPI)
	svc := find(t, gateway, "Service", "oauth2-proxy")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	want := fmt.Sprintf("http://%s.%s.svc:%v/oauth2/auth", svc.GetName(), svc.GetNamespace(), asMap(ports[0])["port"])
	if auth["auth_url"] != want {
		t.Errorf("auth_url %v, want %s", auth["auth_url"], want)
	}

	// No password anywhere: not in the hub's environment, not in its Secret.
	hub := uisContainer(t, find(t, objs, "StatefulSet", "tf-hub"), "hub")
	for _, e := range asSlice(hub["env"]) {
		if name := fmt.Sprint(asMap(e)["name"]); strings.Contains(name, "PASSWORD") {
			t.Errorf("hub environment has %s behind the gateway", name)
		}
	}
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "Secret", "jupyterhub").Object, "stringData")
	for key := range data {
		if strings.Contains(key, "password") {
			t.Errorf("Secret jupyterhub holds %s behind the gateway", key)
		}
	}

	// Each user reaches only their own server: no role the configuration loads grants servers
	// of other users (JupyterHub's default roles give users `self`, admins everyone's).
	for _, r := range asSlice(asMap(config["JupyterHub"])["load_roles"]) {
		role := asMap(r)
		for _, scope := range uisStrings(role["scopes"]) {
			if strings.HasPrefix(scope, "access:servers") || strings.HasPrefix(scope, "admin:") {
				if len(asSlice(role["users"])) > 0 || len(asSlice(role["groups"])) > 0 || role["name"] == "user" {
					t.Errorf("role %v grants %s to users or groups", role["name"], scope)
				}
			}
		}
	}

	// The hub's routes require the gateway's sign-in (any signed-in user).
	for _, name := range []string{"jupyterhub-hub", "jupyterhub-user"} {
		route := find(t, objs, "HTTPRoute", name)
		rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
		if len(rules) == 0 || filterMiddleware(asMap(asSlice(asMap(rules[0])["filters"])[0])) != "signin" {
			t.Errorf("HTTPRoute %s is not behind the sign-in Middleware: %v", name, rules)
		}
	}
}

// TestJupyterHubGatewayAuthenticator runs the rendered authenticator module against stand-ins
// of the JupyterHub, tornado and traitlets APIs it uses (testdata/jupyterhub_gateway_auth_check.py):
// identity only from the sign-in proxy's answer about the request's own credentials, never
// from headers the request carries; admins by group; a hub session ends when the gateway
// session is another user's; /hub/login sends the browser to sign in or signs the user in.
func TestJupyterHubGatewayAuthenticator(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot run the authenticator")
	}
	objs := renderFor(t, "jupyterhub", nil, GatewayAPI)
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "jupyterhub-config").Object, "data")
	module, ok := data["kfdeploy_gateway_auth.py"]
	if !ok {
		t.Fatal("ConfigMap jupyterhub-config has no kfdeploy_gateway_auth.py behind the gateway")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kfdeploy_gateway_auth.py"), []byte(module), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "jupyterhub_gateway_auth_check.py"), dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr // the module's log lines, and the failed check
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("authenticator checks: %v\n%s%s", err, out, stderr.String())
	}

	// Without the gateway the module is not shipped (the shared password applies).
	data, _, _ = unstructured.NestedStringMap(find(t, render(t, "jupyterhub", nil), "ConfigMap", "jupyterhub-config").Object, "data")
	if _, ok := data["kfdeploy_gateway_auth.py"]; ok {
		t.Error("kfdeploy_gateway_auth.py shipped without the gateway")
	}
}
