package render

// Render tests of the infrastructure components (ambassador, nvidia-device-plugin, modeldb,
// nfs-provisioner, spartakus). Each holds the manifest against a fact read in the upstream
// source at the pinned tag; the file@tag is in the comment next to the check.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// typed converts the rendered object of the given kind and name into out (a k8s.io/api type).
func typed(t *testing.T, objs []*unstructured.Unstructured, kind, name string, out any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.GetKind()]++
	}
	return out
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// grants reports whether rules allow verb on resource of group.
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// emissaryResources parses the getambassador.io/config annotations of every rendered component.
func emissaryResources(t *testing.T) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for file, objs := range renderAll(t) {
		for _, o := range objs {
			out[file] = append(out[file], emissaryDocs(t, o)...)
		}
	}
	return out
}

// mappingFields are the v3alpha1 Mapping fields the components use, with their JSON names in
// pkg/api/getambassador.io/v3alpha1/crd_mapping.go@v4.1.0 (hostname, prefix, service, rewrite,
// allow_upgrade, timeout_ms, idle_timeout_ms); Emissary validates annotations against that schema
// (pkg/snapshot/v1/annotations.go@v4.1.0), and a misspelt field would not set the timeout.
var mappingFields = map[string]bool{
	"apiVersion": true, "kind": true, "name": true, // the flat annotation form's metadata
	"hostname": true, "prefix": true, "service": true, "rewrite": true, "allow_upgrade": true,
	"timeout_ms": true, "idle_timeout_ms": true,
}

// TestMappingTimeouts: a Mapping without timeout_ms gets 3000 ms for the whole response unless
// the Module sets cluster_request_timeout_ms (python/ambassador/src/ambassador/envoy/v3/
// v3route.py@v4.1.0: `mapping.get("timeout_ms", default_timeout_ms)`, default 3000). That cut
// JupyterHub's spawn progress and Argo's event and log streams. Every route must set its own:
// long-lived ones (websocket upgrades, streams) none at all (0, which turns Envoy's route timeout
// off) or at least the 300000 that Kubeflow v0.3 set on the hub routes, and an idle timeout above
// Envoy's 5-minute stream idle default; ordinary ones at least 30 s.
func TestMappingTimeouts(t *testing.T) {
	longLived := map[string]bool{} // prefixes that must carry long-lived connections
	for _, p := range []string{"/hub/", "/user/", "/argo/"} {
		longLived[p] = true
	}
	seen := map[string]bool{}
	for file, resources := range emissaryResources(t) {
		for _, r := range resources {
			if r["kind"] != "Mapping" {
				continue
			}
			where := fmt.Sprintf("%s: Mapping %v (%v)", file, r["name"], r["prefix"])
			for field := range r {
				if !mappingFields[field] {
					t.Errorf("%s: field %s is none of the Mapping fields used here (crd_mapping.go@v4.1.0)", where, field)
				}
			}
			prefix := fmt.Sprint(r["prefix"])
			seen[prefix] = true
			timeout, ok := number(r["timeout_ms"])
			if !ok {
				t.Errorf("%s has no timeout_ms: Emissary gives it 3000 ms", where)
				continue
			}
			_, upgrades := r["allow_upgrade"]
			if longLived[prefix] && !upgrades {
				t.Errorf("%s carries long-lived connections but allows no websocket upgrade", where)
			}
			if upgrades || longLived[prefix] {
				if timeout != 0 && timeout < 300000 {
					t.Errorf("%s: timeout_ms %v cuts long-lived responses; want 0 (none) or >= 300000", where, timeout)
				}
				idle, ok := number(r["idle_timeout_ms"])
				if !ok || idle <= 300000 {
					t.Errorf("%s: idle_timeout_ms %v, want more than Envoy's 5-minute stream idle default", where, r["idle_timeout_ms"])
				}
				continue
			}
			if timeout < 30000 {
				t.Errorf("%s: timeout_ms %v is too short for a UI or API request (want >= 30000)", where, timeout)
			}
		}
	}
	for p := range longLived {
		if !seen[p] {
			t.Errorf("no Mapping for %s", p)
		}
	}
}

// TestEmissaryModuleDefaultTimeout: routes that others add without timeout_ms get the Module's
// cluster_request_timeout_ms (a key of the ambassador Module: python/ambassador/src/ambassador/
// ir/irambassador.py@v4.1.0; crd_module.go@v4.1.0 "If not set ... a 3000 millisecond timeout").
func TestEmissaryModuleDefaultTimeout(t *testing.T) {
	var module map[string]any
	for _, r := range emissaryResources(t)["ambassador"] {
		if r["kind"] == "Module" && r["name"] == "ambassador" {
			module = r
		}
	}
	if module == nil {
		t.Fatal("ambassador renders no Module named ambassador (the only name Emissary reads)")
	}
	config, _ := module["config"].(map[string]any)
	if got, ok := number(config["cluster_request_timeout_ms"]); !ok || got != 60000 {
		t.Errorf("Module config.cluster_request_timeout_ms = %v, want the defaultTimeoutMs default 60000", config["cluster_request_timeout_ms"])
	}
	objs := render(t, "ambassador", map[string]any{"defaultTimeoutMs": 0})
	var svc corev1.Service
	typed(t, objs, "Service", "ambassador-admin", &svc)
	if !strings.Contains(svc.Annotations["getambassador.io/config"], "cluster_request_timeout_ms: 0") {
		t.Errorf("defaultTimeoutMs 0 does not reach the Module:\n%s", svc.Annotations["getambassador.io/config"])
	}
}

// TestEmissaryGatewayResources holds the Listener and Host against their v3alpha1 types
// (pkg/api/getambassador.io/v3alpha1/crd_listener.go@v4.1.0: port and securityModel required,
// protocol ∈ HTTP, HTTPS, …, securityModel ∈ XFP, SECURE, INSECURE, hostBinding.namespace.from ∈
// SELF, ALL; crd_host.go@v4.1.0: requestPolicy.insecure.action ∈ Redirect, Reject, Route).
// Without a Listener Emissary v3+ accepts no connection at all. With TLS (the default) the Host
// names its certificate Secret and redirects cleartext; with tls false it must Route cleartext,
// since nothing would serve the HTTPS it redirects to (gateway_test.go holds the TLS details).
func TestEmissaryGatewayResources(t *testing.T) {
	var listeners, hosts int
	for _, r := range emissaryResources(t)["ambassador"] {
		where := fmt.Sprintf("%s %v", r["kind"], r["name"])
		switch r["kind"] {
		case "Listener":
			listeners++
			if !slices.Contains([]string{"HTTP", "HTTPS", "HTTPPROXY", "HTTPSPROXY", "TCP", "TLS", "UDP"}, fmt.Sprint(r["protocol"])) {
				t.Errorf("%s: protocol %v", where, r["protocol"])
			}
			if !slices.Contains([]string{"XFP", "SECURE", "INSECURE"}, fmt.Sprint(r["securityModel"])) {
				t.Errorf("%s: securityModel %v", where, r["securityModel"])
			}
			if _, ok := number(r["port"]); !ok {
				t.Errorf("%s: no port", where)
			}
			binding, _ := r["hostBinding"].(map[string]any)
			ns, _ := binding["namespace"].(map[string]any)
			if !slices.Contains([]string{"SELF", "ALL"}, fmt.Sprint(ns["from"])) {
				t.Errorf("%s: hostBinding.namespace.from %v", where, ns["from"])
			}
		case "Host":
			hosts++
			policy, _ := r["requestPolicy"].(map[string]any)
			insecure, _ := policy["insecure"].(map[string]any)
			tlsSecret, _ := r["tlsSecret"].(map[string]any)
			if tlsSecret["name"] == nil || insecure["action"] != "Redirect" {
				t.Errorf("%s: tlsSecret %v, requestPolicy.insecure.action %v; by default the Host serves TLS and redirects cleartext", where, r["tlsSecret"], insecure["action"])
			}
		}
	}
	if listeners == 0 || hosts == 0 {
		t.Errorf("%d Listeners and %d Hosts; the gateway needs both", listeners, hosts)
	}
	for _, r := range gatewayResources(t, render(t, "ambassador", map[string]any{"tls": false})) {
		policy, _ := r["requestPolicy"].(map[string]any)
		insecure, _ := policy["insecure"].(map[string]any)
		if r["kind"] == "Host" && (insecure["action"] != "Route" || r["tlsSecret"] != nil) {
			t.Errorf("tls false: Host %v has tlsSecret %v and insecure action %v; cleartext must be routed", r["name"], r["tlsSecret"], insecure["action"])
		}
	}
}

// TestEmissaryDeployment holds the gateway against Emissary v4.1.0.
func TestEmissaryDeployment(t *testing.T) {
	objs := render(t, "ambassador", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "ambassador", &d)
	c := d.Spec.Template.Spec.Containers[0]

	// From v4 images are published to GHCR only, tagged with the version without its "v":
	// charts/emissary-ingress/values.yaml@v4.1.0 (defaultImageRepository
	// "ghcr.io/emissary-ingress/emissary", tag .Chart.AppVersion) and build-aux/charts.mk@v4.1.0
	// (CHART_VERSION = VERSION without the leading v, passed as --app-version).
	if !regexp.MustCompile(`^ghcr\.io/emissary-ingress/emissary:4\.[0-9]+\.[0-9]+$`).MatchString(c.Image) {
		t.Errorf("image %s: want ghcr.io/emissary-ingress/emissary:4.x.y (no v)", c.Image)
	}

	env := envOf(c)
	// Single-namespace mode is on for any non-empty value (cmd/entrypoint/helpers.go@v4.1.0,
	// envbool), and the namespace defaults to "default" (cmd/entrypoint/env.go@v4.1.0).
	if env["AMBASSADOR_SINGLE_NAMESPACE"].Value == "" {
		t.Error("AMBASSADOR_SINGLE_NAMESPACE is empty: Emissary would watch every namespace")
	}
	if f := env["AMBASSADOR_NAMESPACE"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "metadata.namespace" {
		t.Error("AMBASSADOR_NAMESPACE must come from metadata.namespace, or Emissary watches namespace default")
	}
	// Waiting for the apiext conversion webhook (cmd/entrypoint/wait_apiext.go@v4.1.0) would
	// block forever: no apiext is deployed, the routes need no CRD.
	if _, ok := env["AMBASSADOR_APIEXT_WAIT"]; ok {
		t.Error("AMBASSADOR_APIEXT_WAIT is set, but no apiext Deployment exists")
	}

	// Health endpoints on the health-check port 8877 (cmd/entrypoint/env.go@v4.1.0,
	// AMBASSADOR_HEALTHCHECK_BIND_PORT default; cmd/entrypoint/healthcheck_server.go@v4.1.0).
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["admin"] != 8877 {
		t.Errorf("admin port %d, want 8877", ports["admin"])
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/ambassador/v0/check_alive", c.ReadinessProbe: "/ambassador/v0/check_ready"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "admin" {
			t.Errorf("probe %+v, want GET %s on admin", probe, want)
		}
	}
	// The Listener listens on the container's https port (http with tls false).
	listener := false
	for _, r := range emissaryResources(t)["ambassador"] {
		if r["kind"] == "Listener" {
			if port, _ := number(r["port"]); int32(port) != ports["https"] {
				t.Errorf("Listener %v on port %v, container https port %d", r["name"], r["port"], ports["https"])
			}
			listener = true
		}
	}
	if !listener {
		t.Error("no Listener: Emissary v3+ listens on nothing without one")
	}

	// Envoy and the Python configuration compiler share the container; upstream recommends a
	// 600Mi limit (charts/emissary-ingress/values.yaml@v4.1.0, resources).
	if limit := c.Resources.Limits[corev1.ResourceMemory]; limit.Cmp(resource.MustParse("600Mi")) < 0 {
		t.Errorf("memory limit %s, below upstream's recommended 600Mi", limit.String())
	}

	// The user 8888 exists in the image (docker/emissary/Dockerfile@v4.1.0, adduser --uid 8888
	// --ingroup root); /ambassador is writable by group root, so no runAsGroup overrides it.
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 8888 || sc.RunAsGroup != nil {
		t.Errorf("securityContext %+v: want runAsUser 8888 and the image's group", c.SecurityContext)
	}
}

// TestEmissaryRBAC: in single-namespace mode Emissary watches Services, Endpoints, Secrets,
// ConfigMaps and Ingresses of its namespace (cmd/entrypoint/interesting_types.go@v4.1.0) and
// learns which kinds exist from discovery (watcher.go, client.ServerResources), reading no CRDs:
// a Role suffices and no cluster-scoped grant is rendered. It reads its namespace for its
// cluster ID (entrypoint.go@v4.1.0, GetClusterID).
func TestEmissaryRBAC(t *testing.T) {
	objs := render(t, "ambassador", nil)
	if k := kinds(objs); k["ClusterRole"]+k["ClusterRoleBinding"] > 0 {
		t.Errorf("ambassador renders cluster-scoped RBAC %v; Emissary v4 needs none", k)
	}
	var role rbacv1.Role
	typed(t, objs, "Role", "ambassador", &role)
	for _, gr := range [][2]string{{"", "services"}, {"", "endpoints"}, {"", "secrets"}, {"", "configmaps"}, {"networking.k8s.io", "ingresses"}} {
		for _, verb := range []string{"get", "list", "watch"} {
			if !grants(role.Rules, gr[0], gr[1], verb) {
				t.Errorf("Role ambassador does not grant %s %s.%s", verb, gr[1], gr[0])
			}
		}
	}
	if !grants(role.Rules, "", "namespaces", "get") {
		t.Error("Role ambassador does not grant get on its namespace (cluster ID)")
	}
}

// TestDevicePluginNodes: upstream's static manifest runs the plugin on every node with the
// nvidia.com/gpu toleration and no nodeSelector (deployments/static/nvidia-device-plugin.yml@
// v0.20.0); the nvidia.com/gpu.present label its Helm chart selects on comes from GPU Feature
// Discovery, which kfdeploy does not deploy. On a node without a driver NVML fails to load and
// the plugin returns an error unless fail-on-init-error is false (internal/plugin/factory.go@
// v0.20.0), whose default is true (cmd/nvidia-device-plugin/main.go@v0.20.0, env
// FAIL_ON_INIT_ERROR): then it logs "No devices found. Waiting indefinitely." instead of
// crash-looping.
func TestDevicePluginNodes(t *testing.T) {
	objs := render(t, "nvidia-device-plugin", nil)
	var ds appsv1.DaemonSet
	typed(t, objs, "DaemonSet", "nvidia-device-plugin", &ds)
	pod := ds.Spec.Template.Spec
	if len(pod.NodeSelector) > 0 || pod.Affinity != nil {
		t.Errorf("default nodeSelector %v / affinity %v: on a plain cluster no node carries those labels", pod.NodeSelector, pod.Affinity)
	}
	tolerates := false
	for _, tol := range pod.Tolerations {
		if tol.Key == "nvidia.com/gpu" && tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule {
			tolerates = true
		}
	}
	if !tolerates {
		t.Error("no toleration for the nvidia.com/gpu NoSchedule taint of GPU nodes")
	}
	c := pod.Containers[0]
	if got := envOf(c)["FAIL_ON_INIT_ERROR"].Value; got != "false" {
		t.Errorf("FAIL_ON_INIT_ERROR=%q: the plugin exits (crash loop) on every node without a GPU", got)
	}
	// The kubelet's device-plugin directory, where the plugin puts its socket
	// (deployments/static/nvidia-device-plugin.yml@v0.20.0).
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || m.MountPath == "/var/lib/kubelet/device-plugins"
	}
	if !mounted {
		t.Error("the kubelet's device-plugins directory is not mounted")
	}
	if c.Image != "nvcr.io/nvidia/k8s-device-plugin:v0.20.0" {
		t.Errorf("image %s, want nvcr.io/nvidia/k8s-device-plugin:v0.20.0 (deployments/static/nvidia-device-plugin.yml@v0.20.0)", c.Image)
	}
	if pod.RuntimeClassName != nil {
		t.Errorf("runtimeClassName %q by default; the cluster may have no such RuntimeClass", *pod.RuntimeClassName)
	}

	// runtimeClassName (upstream's chart has it too: deployments/helm/nvidia-device-plugin/
	// values.yaml@v0.20.0) reaches the pod; a selector, where given, too.
	objs = render(t, "nvidia-device-plugin", map[string]any{"runtimeClassName": "nvidia", "nodeSelector": map[string]any{"nvidia.com/gpu.present": "true"}})
	typed(t, objs, "DaemonSet", "nvidia-device-plugin", &ds)
	if rc := ds.Spec.Template.Spec.RuntimeClassName; rc == nil || *rc != "nvidia" {
		t.Errorf("runtimeClassName %v, want nvidia", rc)
	}
	if ds.Spec.Template.Spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
		t.Errorf("nodeSelector %v, want the one given", ds.Spec.Template.Spec.NodeSelector)
	}
	if _, err := library().Render("nvidia-device-plugin", map[string]any{"runtimeClassName": ""}, goldenEnv(t, "nvidia-device-plugin")); err == nil || !strings.Contains(err.Error(), "runtimeClassName") {
		t.Errorf("runtimeClassName '': got %v, want an error naming runtimeClassName", err)
	}
}

// dsn is the go-sql-driver/mysql data source name form [user[:password]@][net[(addr)]]/dbname[?params],
// which the registry parses (internal/datastore/embedmd/service.go@v0.3.8, mysql.ParseDSN).
var dsn = regexp.MustCompile(`^\$\(([A-Z_]+)\):\$\(([A-Z_]+)\)@tcp\(([a-z0-9-]+):([0-9]+)\)/\$\(([A-Z_]+)\)\?charset=utf8mb4$`)

// TestModelRegistryServer holds the registry against v0.3.8: one container, the embedmd data
// store reached through a DSN (cmd/proxy.go@v0.3.8 flags --datastore-type, --embedmd-database-dsn),
// no ML Metadata sidecar (manifests/kustomize/base/model-registry-deployment.yaml@v0.3.8).
func TestModelRegistryServer(t *testing.T) {
	objs := render(t, "modeldb", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "model-registry", &d)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; v0.3 runs the server alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Command, []string{"/model-registry", "proxy"}) {
		t.Errorf("command %v, want /model-registry proxy (Dockerfile@v0.3.8 puts the binary at /)", c.Command)
	}
	if !slices.Contains(c.Args, "--datastore-type=embedmd") {
		t.Errorf("args %v lack --datastore-type=embedmd", c.Args)
	}
	for _, a := range c.Args {
		if strings.Contains(a, "mlmd") || strings.Contains(a, "DB_PASSWORD") || strings.HasPrefix(a, "--embedmd-database-dsn") {
			t.Errorf("argument %q: the v0.3 server takes no ML Metadata flags, and the DSN (with the password) goes through the environment", a)
		}
	}

	// Every flag can come from MR_<FLAG with - as _> (cmd/root.go@v0.3.8: SetEnvPrefix("MR"),
	// "-" → "_", AutomaticEnv, then copied into unset flags).
	env := envOf(c)
	m := dsn.FindStringSubmatch(env["MR_EMBEDMD_DATABASE_DSN"].Value)
	if m == nil {
		t.Fatalf("MR_EMBEDMD_DATABASE_DSN %q is not a go-sql-driver DSN user:password@tcp(host:port)/db", env["MR_EMBEDMD_DATABASE_DSN"].Value)
	}
	user, password, host, port, database := m[1], m[2], m[3], m[4], m[5]
	// $(VAR) expands only variables defined earlier in the list.
	for _, v := range []string{user, password, database} {
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == v })
		j := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "MR_EMBEDMD_DATABASE_DSN" })
		if i < 0 || i > j {
			t.Errorf("DSN refers to $(%s), which is not defined before it", v)
		}
	}
	if ref := env[password].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "modeldb-mysql-secrets" || ref.SecretKeyRef.Key != "password" {
		t.Errorf("%s must come from Secret modeldb-mysql-secrets key password", password)
	}
	var svc corev1.Service
	typed(t, objs, "Service", host, &svc)
	if len(svc.Spec.Ports) == 0 || fmt.Sprint(svc.Spec.Ports[0].Port) != port {
		t.Errorf("DSN goes to %s:%s, Service %s has ports %v", host, port, host, svc.Spec.Ports)
	}

	// /readyz/health answers once the database is connected and migrated (cmd/proxy.go@v0.3.8).
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz/health" {
		t.Errorf("readiness probe %+v, want GET /readyz/health", c.ReadinessProbe)
	}
	// The server listens at --port; the Service and the route use that port.
	if !slices.Contains(c.Args, "--port=8080") || len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("args %v / ports %v: want --port=8080 and container port 8080", c.Args, c.Ports)
	}
	// 65532 is the image's user (Dockerfile@v0.3.8, USER 65532:65532).
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("securityContext %+v, want runAsUser 65532", c.SecurityContext)
	}
}

// TestModelRegistryMySQL: the server's driver (go-sql-driver/mysql v1.9.3, go.mod@v0.3.8) speaks
// caching_sha2_password, MySQL 8's default, so new users need no authentication-plugin option;
// --default-authentication-plugin, which ML Metadata needed, makes MySQL 8.4 refuse to start
// (the option was removed there). 8.4 disables mysql_native_password, the plugin of the user an
// earlier release created under that option, so the server loads it (--mysql-native-password=ON)
// and that user can still sign in. The database and user keep the names an earlier release
// created, so its data stays in use: the registry adopts an ML Metadata schema
// (internal/datastore/embedmd/mysql/migrations/000001_create_artifact_table.up.sql@v0.3.8,
// CREATE TABLE IF NOT EXISTS; 000018: schema_version 10, the version of the ML Metadata 1.14.0
// schema the v0.2 sidecar wrote: ml_metadata/util/metadata_source_query_config.cc@v1.14.0).
func TestModelRegistryMySQL(t *testing.T) {
	objs := render(t, "modeldb", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "modeldb-mysql", &d)
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		if strings.Contains(a, "authentication-plugin") || strings.Contains(a, "native_password") {
			t.Errorf("MySQL argument %q: the registry needs no authentication plugin option, and MySQL 8.4 rejects it", a)
		}
	}
	if !slices.Contains(c.Args, "--mysql-native-password=ON") {
		t.Errorf("MySQL args %v: want --mysql-native-password=ON, or users that earlier releases created cannot sign in", c.Args)
	}
	env := envOf(c)
	if env["MYSQL_DATABASE"].Value != "metadb" || env["MYSQL_USER"].Value != "mlmd" {
		t.Errorf("database %q user %q: want metadb and mlmd, the names existing apps' data is under", env["MYSQL_DATABASE"].Value, env["MYSQL_USER"].Value)
	}
}

// TestNFSProvisioner holds the provisioner against v4.0.2: it reads NFS_SERVER, NFS_PATH and
// PROVISIONER_NAME (cmd/nfs-subdir-external-provisioner/provisioner.go@v4.0.2), serves the
// StorageClasses naming that provisioner, and elects a leader with an Endpoints lock in its
// namespace (sig-storage-lib-external-provisioner v6.0.0, go.mod@v4.0.2; controller/controller.go:
// resourcelock.New("endpoints", ...)). The library reads Nodes only for claims with a selected
// node, which only WaitForFirstConsumer classes get; this class binds Immediate and gets no
// Node grant.
func TestNFSProvisioner(t *testing.T) {
	objs := render(t, "nfs-provisioner", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "nfs-provisioner", &d)
	c := d.Spec.Template.Spec.Containers[0]
	env := envOf(c)
	var sc storagev1.StorageClass
	typed(t, objs, "StorageClass", "nfs-client", &sc)
	if env["PROVISIONER_NAME"].Value != sc.Provisioner {
		t.Errorf("PROVISIONER_NAME %q, StorageClass provisioner %q", env["PROVISIONER_NAME"].Value, sc.Provisioner)
	}
	if env["NFS_SERVER"].Value != "nfs.example.com" || env["NFS_PATH"].Value != "/srv/nfs/kubeflow" {
		t.Errorf("NFS_SERVER %q NFS_PATH %q, want the server and path parameters", env["NFS_SERVER"].Value, env["NFS_PATH"].Value)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || m.MountPath == "/persistentvolumes" // mountPath const in provisioner.go@v4.0.2
	}
	if !mounted {
		t.Error("the export is not mounted at /persistentvolumes, where the provisioner makes directories")
	}
	var role rbacv1.Role
	typed(t, objs, "Role", "nfs-provisioner", &role)
	for _, verb := range []string{"get", "create", "update"} {
		if !grants(role.Rules, "", "endpoints", verb) {
			t.Errorf("Role nfs-provisioner does not grant %s endpoints (its leader-election lock)", verb)
		}
	}
	if grants(role.Rules, "coordination.k8s.io", "leases", "get") {
		t.Error("Role nfs-provisioner grants Leases, which v4.0.2 never uses")
	}
	if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("volumeBindingMode %v: WaitForFirstConsumer would make the provisioner read Nodes, which it may not", sc.VolumeBindingMode)
	}
}

// TestSpartakus: retired (github.com/kubernetes-retired/spartakus), so off by default; when on,
// the volunteer needs a cluster ID (cmd/spartakus/volunteer.go@v1.1.0, Validate) and lists nodes
// (pkg/volunteer/kubernetes.go@v1.1.0, Nodes().List), nothing else.
func TestSpartakus(t *testing.T) {
	if objs := render(t, "spartakus", nil); len(objs) != 0 {
		t.Errorf("spartakus renders %d objects by default; a retired reporter stays off", len(objs))
	}
	objs := render(t, "spartakus", map[string]any{"enabled": true})
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "spartakus-volunteer", &d)
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "volunteer" || !slices.Contains(c.Args, "--cluster-id=$(REPORTING_ID)") {
		t.Errorf("args %v: want the volunteer subcommand with --cluster-id", c.Args)
	}
	var cr rbacv1.ClusterRole
	typed(t, objs, "ClusterRole", "kubeflow-spartakus-volunteer", &cr)
	if len(cr.Rules) != 1 || !slices.Equal(cr.Rules[0].Resources, []string{"nodes"}) || !slices.Equal(cr.Rules[0].Verbs, []string{"list"}) {
		t.Errorf("ClusterRole rules %+v, want list nodes only", cr.Rules)
	}
}
