package render

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The argo component against Argo Workflows v3.7.18, the version its images pin. Each fact is
// cited as file@tag in github.com/argoproj/argo-workflows.

// argoServerFlags are the flags of `argo server` (cmd/argo/commands/server.go@v3.7.18) plus the
// persistent ones of `argo` that a server uses (cmd/argo/commands/root.go@v3.7.18). An unknown
// flag makes cobra exit before the server starts (v3.5's manifest passed --basehref, which never
// existed: the flag is --base-href).
var argoServerFlags = []string{
	"port", "base-href", "secure", "tls-certificate-secret-name", "hsts", "auth-mode", "configmap",
	"namespaced", "managed-namespace", "browser", "event-operation-queue-size", "event-worker-count",
	"event-async-dispatch", "x-frame-options", "access-control-allow-origin", "api-rate-limit",
	"allowed-link-protocol", "log-format", "kube-api-qps", "kube-api-burst", "loglevel", "gloglevel",
}

// workflowControllerFlags: cmd/workflow-controller/main.go@v3.7.18.
var workflowControllerFlags = []string{
	"configmap", "executor-image", "executor-image-pull-policy", "loglevel", "gloglevel", "log-format",
	"workflow-workers", "workflow-ttl-workers", "pod-cleanup-workers", "cron-workflow-workers",
	"workflow-archive-workers", "burst", "qps", "namespaced", "managed-namespace", "executor-plugins",
}

func TestArgoFlagsExistUpstream(t *testing.T) {
	objs := render(t, "argo", nil)
	cases := []struct {
		deployment string
		known      []string
		skipFirst  bool // argocli's first argument is the subcommand "server"
	}{
		{"argo-server", argoServerFlags, true},
		{"workflow-controller", workflowControllerFlags, false},
	}
	for _, c := range cases {
		args := containerArgs(t, objs, c.deployment)
		if c.skipFirst {
			if len(args) == 0 || args[0] != "server" {
				t.Fatalf("%s: args %q do not start with the subcommand server", c.deployment, args)
			}
			args = args[1:]
		}
		for _, a := range args {
			if !strings.HasPrefix(a, "--") {
				continue // a flag's value
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !slices.Contains(c.known, name) {
				t.Errorf("%s: flag --%s does not exist in v3.7.18; the program would exit at start", c.deployment, name)
			}
		}
	}
}

// The central dashboard shows argo-server's UI in an iframe from the same gateway origin; the
// server's default X-Frame-Options is DENY (cmd/argo/commands/server.go@v3.7.18, flag
// --x-frame-options), which blanks the frame.
func TestArgoServerAllowsSameOriginFrames(t *testing.T) {
	args := containerArgs(t, render(t, "argo", nil), "argo-server")
	if got := flagValue(args, "x-frame-options"); got != "SAMEORIGIN" {
		t.Errorf("argo-server --x-frame-options = %q, want SAMEORIGIN (args %q)", got, args)
	}
	if got := flagValue(args, "base-href"); got != "/argo/" {
		t.Errorf("argo-server --base-href = %q, want /argo/ (the gateway route)", got)
	}
}

// sso needs an issuer, client ID and client secret in the config map or argo-server exits at
// start (server/auth/sso/sso.go@v3.7.18, newSso: "issuer empty"); the component sets none, so
// it must not offer sso. client and server start without configuration.
func TestArgoOffersOnlyAuthModesThatStart(t *testing.T) {
	if _, err := library().Render("argo", map[string]any{"authMode": "sso"}, goldenEnv(t, "argo")); err == nil || !strings.Contains(err.Error(), "authMode must be one of client, server") {
		t.Errorf("authMode sso: got error %v, want it refused", err)
	}
	for _, mode := range []string{"client", "server"} {
		args := containerArgs(t, render(t, "argo", map[string]any{"authMode": mode}), "argo-server")
		if got := flagValue(args, "auth-mode"); got != mode {
			t.Errorf("authMode %s: argo-server --auth-mode = %q", mode, got)
		}
	}
}

// Namespaced controllers still read ClusterWorkflowTemplates cluster-wide: the controller and
// argo-server check get, list and watch on them at start and without all three never resolve
// a templateRef with clusterScope (util/rbac/rbac.go@v3.7.18, HasAccessToClusterWorkflowTemplates;
// workflow/controller/controller.go@v3.7.18, createClusterWorkflowTemplateInformer). A Role
// cannot grant a cluster-scoped resource, so a ClusterRole must — and only read it.
func TestArgoReadsClusterWorkflowTemplatesOnly(t *testing.T) {
	objs := render(t, "argo", nil)
	for _, sa := range []string{"argo", "argo-server"} {
		roles := clusterRolesBoundTo(objs, "kubeflow", sa)
		if len(roles) == 0 {
			t.Errorf("service account %s is bound to no ClusterRole: it cannot read ClusterWorkflowTemplates", sa)
			continue
		}
		for _, role := range roles {
			for _, r := range rules(role) {
				if !slices.Equal(r.APIGroups, []string{"argoproj.io"}) || !slices.Equal(r.Resources, []string{"clusterworkflowtemplates"}) {
					t.Errorf("ClusterRole %s of %s grants %v %v: more than ClusterWorkflowTemplates", role.GetName(), sa, r.APIGroups, r.Resources)
				}
				for _, v := range r.Verbs {
					if !slices.Contains([]string{"get", "list", "watch"}, v) {
						t.Errorf("ClusterRole %s of %s grants %s on ClusterWorkflowTemplates: more than reading", role.GetName(), sa, v)
					}
				}
			}
			for _, verb := range []string{"get", "list", "watch"} {
				if !grants(rules(role), "argoproj.io", "clusterworkflowtemplates", verb) {
					t.Errorf("ClusterRole %s of %s lacks %s on clusterworkflowtemplates", role.GetName(), sa, verb)
				}
			}
		}
	}
}

// The controller's Role against its real calls in namespace mode
// (manifests/namespace-install/workflow-controller-rbac/workflow-controller-role.yaml@v3.7.18).
func TestArgoControllerRole(t *testing.T) {
	role := find(t, render(t, "argo", nil), "Role", "argo")
	need := []struct{ group, resource, verb string }{
		{"coordination.k8s.io", "leases", "update"},     // leader election
		{"", "pods", "create"},                          // workflow pods
		{"", "pods", "patch"},                           // labels completed pods
		{"", "configmaps", "watch"},                     // its config map
		{"argoproj.io", "workflows", "update"},          // status
		{"argoproj.io", "workflowtaskresults", "watch"}, // outputs reported by wait containers
		{"argoproj.io", "workflowtaskresults", "deletecollection"},
		{"argoproj.io", "workflowtemplates", "list"},
		{"argoproj.io", "cronworkflows", "update"},
		{"", "serviceaccounts", "get"}, // executor tokens
		{"", "secrets", "get"},
		{"", "events", "create"},
		{"policy", "poddisruptionbudgets", "create"},
	}
	for _, n := range need {
		if !grants(rules(role), n.group, n.resource, n.verb) {
			t.Errorf("Role argo lacks %s on %s (group %q)", n.verb, n.resource, n.group)
		}
	}
}

// Workflow pods' init and wait containers (argoexec) create and patch their node's
// WorkflowTaskResult and need nothing else with the emissary executor
// (manifests/quick-start/base/executor/emissary/executor-role.yaml@v3.7.18;
// workflow/executor/taskresult.go@v3.7.18).
func TestArgoExecutorRole(t *testing.T) {
	role := find(t, render(t, "argo", nil), "Role", "argo-workflow")
	for _, verb := range []string{"create", "patch"} {
		if !grants(rules(role), "argoproj.io", "workflowtaskresults", verb) {
			t.Errorf("Role argo-workflow lacks %s on workflowtaskresults", verb)
		}
	}
	if n := len(rules(role)); n != 1 {
		t.Errorf("Role argo-workflow has %d rules, want only the task results rule", n)
	}
}

// In client mode argo-server calls the API with the user's own token, so users need rights in
// the namespace; the Role argo-workflows-user is what operators bind (docs/components.md). It
// is not bound by the component: who the users are is the operator's choice.
func TestArgoUserRole(t *testing.T) {
	objs := render(t, "argo", nil)
	role := find(t, objs, "Role", "argo-workflows-user")
	for _, n := range []struct{ group, resource, verb string }{
		{"argoproj.io", "workflows", "create"},
		{"argoproj.io", "workflows", "list"},
		{"argoproj.io", "workflows", "delete"},
		{"argoproj.io", "workflowtemplates", "get"},
		{"argoproj.io", "cronworkflows", "update"},
		{"", "pods", "list"},
		{"", "pods/log", "get"},
		{"", "events", "watch"},
	} {
		if !grants(rules(role), n.group, n.resource, n.verb) {
			t.Errorf("Role argo-workflows-user lacks %s on %s", n.verb, n.resource)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "RoleBinding" {
			if name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name"); name == "argo-workflows-user" {
				t.Errorf("RoleBinding %s binds argo-workflows-user: users are the operator's to bind", o.GetName())
			}
		}
	}
}

// rules are a Role's or ClusterRole's rules, typed.
func rules(role *unstructured.Unstructured) []rbacv1.PolicyRule {
	raw, _, _ := unstructured.NestedSlice(role.Object, "rules")
	out := make([]rbacv1.PolicyRule, 0, len(raw))
	for _, r := range raw {
		m, _ := r.(map[string]any)
		str := func(key string) []string {
			v, _, _ := unstructured.NestedStringSlice(m, key)
			return v
		}
		out = append(out, rbacv1.PolicyRule{APIGroups: str("apiGroups"), Resources: str("resources"), Verbs: str("verbs")})
	}
	return out
}

// clusterRolesBoundTo returns the rendered ClusterRoles that ClusterRoleBindings give to the
// service account namespace/name.
func clusterRolesBoundTo(objs []*unstructured.Unstructured, namespace, name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, b := range objs {
		if b.GetKind() != "ClusterRoleBinding" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		bound := false
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			if m["kind"] == "ServiceAccount" && m["name"] == name && m["namespace"] == namespace {
				bound = true
			}
		}
		roleName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		for _, r := range objs {
			if bound && r.GetKind() == "ClusterRole" && r.GetName() == roleName {
				out = append(out, r)
			}
		}
	}
	return out
}

func containerArgs(t *testing.T, objs []*unstructured.Unstructured, deployment string) []string {
	t.Helper()
	d := find(t, objs, "Deployment", deployment)
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatalf("Deployment %s has no containers", deployment)
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return args
}

// flagValue returns the value of --name=value or --name value in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// The workflows the conformance test runs (test/conformance/argo_test.go) pass the CRD schemas
// the component installs, so a failure there is the controller's, not the schema's.
func TestArgoConformanceSamplesPassSchemas(t *testing.T) {
	schemas := map[string]map[string]any{}
	for _, crd := range render(t, "argo", nil) {
		if crd.GetKind() != "CustomResourceDefinition" {
			continue
		}
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			schema, _, _ := unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema")
			schemas[kind] = schema
		}
	}
	for _, file := range []string{"workflow-dag-outputs-valid.yaml", "workflow-clustertemplate.yaml"} {
		path := filepath.Join("testdata", "samples", file)
		objs := readSample(t, path)
		for _, o := range objs {
			schema, ok := schemas[o.GetKind()]
			if !ok {
				t.Fatalf("%s: no CRD of the argo component serves %s", file, o.GetKind())
			}
			for _, e := range validate(schema, o.Object, "") {
				t.Errorf("%s: %s %s rejected: %s", file, o.GetKind(), o.GetName(), e)
			}
		}
	}
}
