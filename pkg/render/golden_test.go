package render

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	gojsonnet "github.com/google/go-jsonnet"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	kfjsonnet "github.com/kfdeploy/kfdeploy/jsonnet"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// requiredParams are the parameters a component cannot default (it says so when they are
// missing); tests render it with these.
var requiredParams = map[string]map[string]any{
	"nfs-provisioner": {"server": "nfs.example.com", "path": "/srv/nfs/kubeflow"},
}

// goldenCases are rendered to testdata/golden/<file>.yaml: every built-in component at its
// defaults (plus requiredParams), and a few variants worth seeing whole.
func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for _, name := range builtin(t) {
		cases = append(cases, goldenCase{file: name, component: name, params: requiredParams[name]})
	}
	return append(cases,
		goldenCase{file: "spartakus-enabled", component: "spartakus", params: map[string]any{"enabled": true}},
	)
}

type goldenCase struct {
	file, component string
	params          map[string]any
}

func library() *Renderer { return New(kfjsonnet.Library, "") }

func builtin(t *testing.T) []string {
	t.Helper()
	names, err := library().Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// goldenEnv is the environment golden files are rendered in; each declared secret is the
// placeholder kfdeploy-secret:<component>/<name>.
func goldenEnv(t *testing.T, component string) Env {
	t.Helper()
	info, err := library().Describe(component)
	if err != nil {
		t.Fatal(err)
	}
	env := Env{App: "golden", Namespace: "kubeflow", Platform: "none", Secrets: map[string]string{}}
	for name := range info.Secrets {
		env.Secrets[name] = placeholder(component, name)
	}
	return env
}

func placeholder(component, secret string) string {
	return "kfdeploy-secret:" + component + "/" + secret
}

func render(t *testing.T, component string, params map[string]any) []*unstructured.Unstructured {
	t.Helper()
	return renderFor(t, component, params, GatewayNone)
}

// renderFor renders a component as in an app whose gateway is gateway (Env.Gateway).
func renderFor(t *testing.T, component string, params map[string]any, gateway string) []*unstructured.Unstructured {
	t.Helper()
	all := map[string]any{}
	for k, v := range requiredParams[component] {
		all[k] = v
	}
	for k, v := range params {
		all[k] = v
	}
	env := goldenEnv(t, component)
	env.Gateway = gateway
	objs, err := library().Render(component, all, env)
	if err != nil {
		t.Fatalf("render %s with %v (gateway %q): %v", component, all, gateway, err)
	}
	return objs
}

// renderAll renders every built-in component (plus the golden variants) once per test.
func renderAll(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	out := map[string][]*unstructured.Unstructured{}
	for _, c := range goldenCases(t) {
		out[c.file] = render(t, c.component, c.params)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.file, func(t *testing.T) {
			got, err := manifest.Encode(render(t, c.component, c.params))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", c.file+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/render -run Golden -update to create it)", err)
			}
			if line, g, w, differ := firstDifference(string(got), string(want)); differ {
				t.Errorf("%s differs from the rendering at line %d:\n  rendered: %s\n  golden:   %s\n(run go test ./pkg/render -run Golden -update if the change is intended)",
					path, line, g, w)
			}
		})
	}
}

// TestGoldenFilesHaveComponents catches golden files left behind by a removed component; -update
// removes them.
func TestGoldenFilesHaveComponents(t *testing.T) {
	want := map[string]bool{}
	for _, c := range goldenCases(t) {
		want[c.file+".yaml"] = true
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch {
		case want[e.Name()]:
		case *update:
			if err := os.Remove(filepath.Join("testdata", "golden", e.Name())); err != nil {
				t.Error(err)
			}
		default:
			t.Errorf("testdata/golden/%s belongs to no golden case; delete it (or run with -update)", e.Name())
		}
	}
}

func firstDifference(got, want string) (line int, g, w string, differ bool) {
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var a, b string = "<end of file>", "<end of file>"
		if i < len(gl) {
			a = gl[i]
		}
		if i < len(wl) {
			b = wl[i]
		}
		if a != b {
			return i + 1, a, b, true
		}
	}
	return 0, "", "", false
}

// TestRequiredParams: a component that cannot default a parameter says which one to set.
func TestRequiredParams(t *testing.T) {
	for component := range requiredParams {
		_, err := library().Render(component, nil, goldenEnv(t, component))
		if err == nil || !strings.Contains(err.Error(), "set parameter") {
			t.Errorf("%s without its required parameters: got error %v, want one saying which parameter to set", component, err)
		}
	}
}

// TestParamErrors: values a component can't use are rejected with a message naming the parameter.
func TestParamErrors(t *testing.T) {
	cases := []struct {
		component string
		params    map[string]any
		want      string
	}{
		{"ambassador", map[string]any{"serviceType": "Ingress"}, "serviceType must be one of ClusterIP, NodePort, LoadBalancer"},
		{"ambassador", map[string]any{"nodePort": 80}, "nodePort must be a number in 30000-32767"},
		{"ambassador", map[string]any{"serviceType": "ClusterIP", "nodePort": 30080}, "nodePort needs serviceType NodePort or LoadBalancer"},
		{"argo", map[string]any{"authMode": "none"}, "authMode must be one of client, server,"},
		{"katib", map[string]any{"suggestions": map[string]any{"annealing": "example.com/annealing:v1"}}, "unknown suggestion algorithm(s) annealing"},
		{"katib", map[string]any{"suggestions": map[string]any{}}, "suggestions must name at least one algorithm"},
		{"katib", map[string]any{"webhookFailurePolicy": "Retry"}, "webhookFailurePolicy must be Ignore or Fail"},
		{"nfs-provisioner", map[string]any{"path": "exports"}, "set parameter path"},
		{"nfs-provisioner", map[string]any{"reclaimPolicy": "Recycle"}, "reclaimPolicy must be Delete or Retain"},
	}
	for _, c := range cases {
		all := map[string]any{}
		for k, v := range requiredParams[c.component] {
			all[k] = v
		}
		for k, v := range c.params {
			all[k] = v
		}
		_, err := library().Render(c.component, all, goldenEnv(t, c.component))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %v: got error %v, want one containing %q", c.component, c.params, err, c.want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Parameters change exactly what they should

func TestParamChanges(t *testing.T) {
	spec := `spec.template.spec.containers[0]`
	cases := []struct {
		component string
		base      map[string]any // rendered with these, then with changed on top
		changed   map[string]any
		want      []string
	}{
		{"jupyter", nil, map[string]any{"gpus": 1}, []string{
			`Deployment.apps/jupyter:` + spec + `.resources.limits["nvidia.com/gpu"]`,
			`Deployment.apps/jupyter:` + spec + `.resources.requests["nvidia.com/gpu"]`,
		}},
		{"jupyter", nil, map[string]any{"storageClass": ""}, []string{
			`PersistentVolumeClaim/jupyter-data:spec.storageClassName`,
		}},
		{"jupyter", nil, map[string]any{"image": "quay.io/jupyter/minimal-notebook:2024-12-09"}, []string{
			`Deployment.apps/jupyter:` + spec + `.image`,
		}},
		{"ambassador", map[string]any{"serviceType": "ClusterIP"}, map[string]any{"serviceType": "NodePort", "nodePort": 30080}, []string{
			`Secret/ambassador-tls:metadata.annotations["kfdeploy.dev/certificate-node-addresses"]`,
			`Service/ambassador:spec.type`,
			`Service/ambassador:spec.ports[0].nodePort`,
		}},
		{"ambassador", nil, map[string]any{"serviceType": "LoadBalancer"}, []string{
			`Service/ambassador:spec.type`,
		}},
		{"ambassador", nil, map[string]any{"externalIPs": []any{"192.0.2.10"}}, []string{
			`Secret/ambassador-tls:metadata.annotations["kfdeploy.dev/certificate-ip-addresses"]`,
			`Service/ambassador:spec.externalIPs`,
		}},
		{"ambassador", nil, map[string]any{"replicas": 1}, []string{
			`Deployment.apps/ambassador:spec.replicas`,
		}},
		{"katib", nil, map[string]any{"storageSize": "20Gi"}, []string{
			`PersistentVolumeClaim/katib-mysql:spec.resources.requests.storage`,
		}},
		{"katib", nil, map[string]any{"storageClass": ""}, []string{
			`PersistentVolumeClaim/katib-mysql:spec.storageClassName`,
		}},
		{"katib", nil, map[string]any{"webhookFailurePolicy": "Ignore"}, []string{
			`MutatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org:webhooks[0].failurePolicy`,
			`MutatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org:webhooks[1].failurePolicy`,
			`ValidatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org:webhooks[0].failurePolicy`,
		}},
		{"katib", nil, map[string]any{"suggestions": map[string]any{
			"random": "ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0",
			"grid":   "ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0",
			"tpe":    "ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0",
		}}, []string{
			`ConfigMap/katib-config:data["katib-config.yaml"]`,
			`Deployment.apps/katib-controller:spec.template.metadata.annotations["kfdeploy.dev/config-hash"]`,
			`CustomResourceDefinition.apiextensions.k8s.io/experiments.kubeflow.org:spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.algorithm.properties.algorithmName.enum[2]`,
			`CustomResourceDefinition.apiextensions.k8s.io/suggestions.kubeflow.org:spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.algorithm.properties.algorithmName.enum[2]`,
		}},
		{"modeldb", nil, map[string]any{"storageSize": "50Gi"}, []string{
			`PersistentVolumeClaim/modeldb-mysql:spec.resources.requests.storage`,
		}},
		{"jupyterhub", nil, map[string]any{"hubStorageSize": "2Gi"}, []string{
			`PersistentVolumeClaim/tf-hub-db:spec.resources.requests.storage`,
		}},
		{"jupyterhub", nil, map[string]any{"storageClass": ""}, []string{
			`ConfigMap/jupyterhub-config:data["settings.json"]`,
			`PersistentVolumeClaim/tf-hub-db:spec.storageClassName`,
			`StatefulSet.apps/tf-hub:spec.template.metadata.annotations["kfdeploy.dev/config-hash"]`,
		}},
		{"argo", nil, map[string]any{"authMode": "server"}, []string{
			`Deployment.apps/argo-server:` + spec + `.args[3]`,
			`Service/argo-server:metadata.annotations`,
		}},
		{"argo", map[string]any{"authMode": "server"}, map[string]any{"authMode": "server", "route": true}, []string{
			`Service/argo-server:metadata.annotations`,
		}},
		{"katib", nil, map[string]any{"uiRoute": true}, []string{
			`Service/katib-ui:metadata.annotations`,
		}},
		{"modeldb", nil, map[string]any{"route": true}, []string{
			`Service/model-registry:metadata.annotations`,
		}},
		{"nvidia-device-plugin", nil, map[string]any{"nodeSelector": map[string]any{"nvidia.com/gpu.present": "true"}}, []string{
			`DaemonSet.apps/nvidia-device-plugin:spec.template.spec.nodeSelector`,
		}},
		{"nvidia-device-plugin", nil, map[string]any{"runtimeClassName": "nvidia"}, []string{
			`DaemonSet.apps/nvidia-device-plugin:spec.template.spec.runtimeClassName`,
		}},
		{"nfs-provisioner", nil, map[string]any{"server": "192.0.2.20"}, []string{
			`Deployment.apps/nfs-provisioner:` + spec + `.env[1].value`,
			`Deployment.apps/nfs-provisioner:spec.template.spec.volumes[0].nfs.server`,
		}},
		{"core", nil, map[string]any{"namespaceLabels": map[string]any{"pod-security.kubernetes.io/enforce": "baseline"}}, []string{
			`Namespace/kubeflow:metadata.labels["pod-security.kubernetes.io/enforce"]`,
		}},
		{"spartakus", nil, map[string]any{"enabled": true}, []string{
			`ClusterRole.rbac.authorization.k8s.io/kubeflow-spartakus-volunteer (added)`,
			`ClusterRoleBinding.rbac.authorization.k8s.io/kubeflow-spartakus-volunteer (added)`,
			`Deployment.apps/spartakus-volunteer (added)`,
			`Secret/spartakus-volunteer (added)`,
			`ServiceAccount/spartakus-volunteer (added)`,
		}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.component, c.changed), func(t *testing.T) {
			changed := map[string]any{}
			for k, v := range c.base {
				changed[k] = v
			}
			for k, v := range c.changed {
				changed[k] = v
			}
			got := diffObjects(render(t, c.component, c.base), render(t, c.component, changed))
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("changed paths:\n  got  %s\n  want %s", strings.Join(got, "\n       "), strings.Join(want, "\n       "))
			}
		})
	}
}

// diffObjects lists the JSON paths that differ between two renderings, as
// "Kind[.group]/name:path", or "Kind[.group]/name (added|removed)" for whole objects.
func diffObjects(a, b []*unstructured.Unstructured) []string {
	index := func(objs []*unstructured.Unstructured) map[string]any {
		m := map[string]any{}
		for _, o := range objs {
			id := manifest.IDOf(o)
			id.Namespace = ""
			m[id.String()] = o.Object
		}
		return m
	}
	ia, ib := index(a), index(b)
	var out []string
	for id, oa := range ia {
		ob, ok := ib[id]
		if !ok {
			out = append(out, id+" (removed)")
			continue
		}
		for _, p := range diffPaths(oa, ob, "") {
			out = append(out, id+":"+p)
		}
	}
	for id := range ib {
		if _, ok := ia[id]; !ok {
			out = append(out, id+" (added)")
		}
	}
	sort.Strings(out)
	return out
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func diffPaths(a, b any, path string) []string {
	switch ta := a.(type) {
	case map[string]any:
		tb, ok := b.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, va := range ta {
			vb, ok := tb[k]
			if !ok {
				out = append(out, joinKey(path, k))
				continue
			}
			out = append(out, diffPaths(va, vb, joinKey(path, k))...)
		}
		for k := range tb {
			if _, ok := ta[k]; !ok {
				out = append(out, joinKey(path, k))
			}
		}
		return out
	case []any:
		tb, ok := b.([]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for i := 0; i < len(ta) || i < len(tb); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			if i >= len(ta) || i >= len(tb) {
				out = append(out, p)
				continue
			}
			out = append(out, diffPaths(ta[i], tb[i], p)...)
		}
		return out
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{path}
		}
		return nil
	}
}

// ---------------------------------------------------------------------------------------------
// Every object, workload and image is deployable and hardened

// clusterScoped are the kinds the components may render without a namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"StorageClass": true, "PersistentVolume": true, "PriorityClass": true, "GatewayClass": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
}

func TestObjectsNamespaced(t *testing.T) {
	for file, objs := range renderAll(t) {
		for _, o := range objs {
			id := manifest.IDOf(o)
			switch {
			case clusterScoped[id.Kind] && id.Namespace != "":
				t.Errorf("%s: cluster-scoped %s has metadata.namespace", file, id)
			case !clusterScoped[id.Kind] && id.Namespace != "kubeflow":
				t.Errorf("%s: %s must set metadata.namespace to the app's namespace", file, id)
			}
		}
	}
}

// Exemptions, each explained in the component and in docs/components.md.
var (
	noProbes = map[string]bool{
		"spartakus-volunteer/volunteer":             true, // serves nothing, reports on a timer
		"nvidia-device-plugin/nvidia-device-plugin": true, // talks to the kubelet's socket only
		"nfs-provisioner/nfs-provisioner":           true, // serves nothing, works through the API server
	}
	runsAsRoot = map[string]bool{
		"nvidia-device-plugin/nvidia-device-plugin": true, // socket in the kubelet's root-owned directory
		"nfs-provisioner/nfs-provisioner":           true, // manages directories on the NFS export
	}
)

func TestWorkloadsHardened(t *testing.T) {
	for file, objs := range renderAll(t) {
		for _, o := range objs {
			pod, ok := podSpec(o)
			if !ok {
				continue
			}
			workload := manifest.IDOf(o).String()
			podSC, _ := pod["securityContext"].(map[string]any)
			containers, _ := pod["containers"].([]any)
			if len(containers) == 0 {
				t.Errorf("%s: %s has no containers", file, workload)
			}
			if init, ok := pod["initContainers"].([]any); ok {
				containers = append(containers, init...)
			}
			for _, c := range containers {
				c := c.(map[string]any)
				where := fmt.Sprintf("%s: %s container %s", file, workload, c["name"])
				key := o.GetName() + "/" + c["name"].(string)
				for _, field := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
					if _, found, _ := unstructured.NestedString(c, append([]string{"resources"}, strings.Split(field, ".")...)...); !found {
						t.Errorf("%s has no resources.%s", where, field)
					}
				}
				if _, found, _ := unstructured.NestedFieldNoCopy(c, "resources", "requests", "nvidia.com/gpu"); found {
					t.Errorf("%s requests GPUs by default", where)
				}
				if !noProbes[key] {
					for _, probe := range []string{"readinessProbe", "livenessProbe"} {
						if _, ok := c[probe]; !ok {
							t.Errorf("%s has no %s", where, probe)
						}
					}
				}
				sc, _ := c["securityContext"].(map[string]any)
				if sc["allowPrivilegeEscalation"] != false {
					t.Errorf("%s: securityContext.allowPrivilegeEscalation must be false", where)
				}
				if drop, _, _ := unstructured.NestedStringSlice(sc, "capabilities", "drop"); !reflect.DeepEqual(drop, []string{"ALL"}) {
					t.Errorf("%s: securityContext.capabilities.drop must be [ALL], got %v", where, drop)
				}
				if sc["privileged"] == true {
					t.Errorf("%s is privileged", where)
				}
				if _, ok := sc["readOnlyRootFilesystem"].(bool); !ok {
					t.Errorf("%s: say whether the root filesystem is read-only (securityContext.readOnlyRootFilesystem)", where)
				}
				nonRoot := sc["runAsNonRoot"] == true || (sc["runAsNonRoot"] == nil && podSC["runAsNonRoot"] == true)
				if nonRoot == runsAsRoot[key] {
					t.Errorf("%s: runAsNonRoot is %v, want %v", where, nonRoot, !runsAsRoot[key])
				}
				seccomp, _, _ := unstructured.NestedString(sc, "seccompProfile", "type")
				podSeccomp, _, _ := unstructured.NestedString(podSC, "seccompProfile", "type")
				if seccomp != "RuntimeDefault" && podSeccomp != "RuntimeDefault" {
					t.Errorf("%s: no RuntimeDefault seccomp profile", where)
				}
				if err := checkImage(c["image"].(string)); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
		}
	}
}

func podSpec(o *unstructured.Unstructured) (map[string]any, bool) {
	switch o.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		spec, ok, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		return spec, ok
	case "Pod":
		spec, ok, _ := unstructured.NestedMap(o.Object, "spec")
		return spec, ok
	}
	return nil, false
}

var imageRef = regexp.MustCompile(`^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$`)

// checkImage insists on a version tag or a digest, never latest.
func checkImage(image string) error {
	if !imageRef.MatchString(image) {
		return fmt.Errorf("image %q is not a valid reference", image)
	}
	name, digest, _ := strings.Cut(image, "@")
	last := name[strings.LastIndex(name, "/")+1:]
	_, tag, tagged := strings.Cut(last, ":")
	switch {
	case tag == "latest":
		return fmt.Errorf("image %q uses the latest tag", image)
	case !tagged && digest == "":
		return fmt.Errorf("image %q has no tag or digest", image)
	}
	return nil
}

// TestNoLatestAnywhere scans every string the components render (configuration files included,
// e.g. Katib's suggestion images) and the image library.
func TestNoLatestAnywhere(t *testing.T) {
	for file, objs := range renderAll(t) {
		for _, o := range objs {
			walkStrings(o.Object, "", func(path, s string) {
				if strings.Contains(s, ":latest") {
					t.Errorf("%s: %s %s mentions a latest tag: %q", file, manifest.IDOf(o), path, s)
				}
			})
		}
	}
	for name, image := range imageLibrary(t) {
		if err := checkImage(image); err != nil {
			t.Errorf("images.libsonnet %s: %v", name, err)
		}
	}
}

func walkStrings(v any, path string, f func(path, s string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			walkStrings(e, joinKey(path, k), f)
		}
	case []any:
		for i, e := range t {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	case string:
		f(path, t)
	}
}

// imageLibrary evaluates jsonnet/lib/images.libsonnet: image name (dotted for nested) → image.
func imageLibrary(t *testing.T) map[string]string {
	t.Helper()
	vm := gojsonnet.MakeVM()
	vm.Importer(newImporter(kfjsonnet.Library, nil))
	out, err := vm.EvaluateAnonymousSnippet("images", "import 'kfdeploy/images.libsonnet'")
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	walkStrings(tree, "", func(path, s string) { images[path] = s })
	return images
}

// TestImagesDocumented: docs/components.md has the table of every image.
func TestImagesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "components.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, image := range imageLibrary(t) {
		if !strings.Contains(string(readme), "`"+image+"`") {
			t.Errorf("README.md's image table doesn't list image %s (%s)", image, name)
		}
	}
	for _, name := range builtin(t) {
		if !strings.Contains(string(doc), "### `"+name+"`") {
			t.Errorf("docs/components.md doesn't describe component %s", name)
		}
		info, err := library().Describe(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range info.Params {
			if !strings.Contains(string(doc), "| `"+p.Name+"` |") {
				t.Errorf("docs/components.md doesn't document parameter %s.%s", name, p.Name)
			}
		}
	}
}

// TestFitsTheCluster: everything the full preset runs at its defaults fits comfortably on the
// test cluster (4 workers of 8 CPU / 16Gi) and every single pod fits one worker.
func TestFitsTheCluster(t *testing.T) {
	var cpu, memory resource.Quantity
	for _, component := range presets(t)["full"] {
		for _, o := range render(t, component, nil) {
			pod, ok := podSpec(o)
			if !ok {
				continue
			}
			replicas, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
			if !found {
				replicas = 1
			}
			var podCPU, podMemory resource.Quantity
			for _, c := range pod["containers"].([]any) {
				req, _, _ := unstructured.NestedStringMap(c.(map[string]any), "resources", "requests")
				podCPU.Add(resource.MustParse(req["cpu"]))
				podMemory.Add(resource.MustParse(req["memory"]))
			}
			if podCPU.Cmp(resource.MustParse("4")) > 0 || podMemory.Cmp(resource.MustParse("8Gi")) > 0 {
				t.Errorf("%s %s: a pod requests %s CPU and %s memory", component, manifest.IDOf(o), podCPU.String(), podMemory.String())
			}
			for i := int64(0); i < replicas; i++ {
				cpu.Add(podCPU)
				memory.Add(podMemory)
			}
		}
	}
	t.Logf("full preset requests %s CPU and %s memory", cpu.String(), memory.String())
	if cpu.Cmp(resource.MustParse("8")) > 0 || memory.Cmp(resource.MustParse("16Gi")) > 0 {
		t.Errorf("full preset requests %s CPU and %s memory: too much for the test cluster", cpu.String(), memory.String())
	}
}

// ---------------------------------------------------------------------------------------------
// Secrets, routes, presets

// TestSecretsOnlyInSecrets: generated passwords appear only as a Secret's stringData, in
// Secrets kept on teardown, and every declared secret is used.
func TestSecretsOnlyInSecrets(t *testing.T) {
	all := renderAll(t)
	for _, c := range goldenCases(t) {
		used := map[string]bool{}
		for _, o := range all[c.file] {
			id := manifest.IDOf(o)
			walkStrings(o.Object, "", func(path, s string) {
				if !strings.Contains(s, "kfdeploy-secret:") {
					return
				}
				if id.Kind != "Secret" || !strings.HasPrefix(path, "stringData") || !strings.HasPrefix(s, "kfdeploy-secret:") {
					t.Errorf("%s: %s %s uses a generated secret outside a Secret's stringData", c.file, id, path)
				}
				if o.GetAnnotations()["kfdeploy.dev/keep-on-delete"] != "true" {
					t.Errorf("%s: %s holds a generated secret but isn't annotated kfdeploy.dev/keep-on-delete", c.file, id)
				}
				used[s] = true
			})
		}
		if len(all[c.file]) == 0 {
			continue // renders nothing (spartakus at its defaults)
		}
		for name := range goldenEnv(t, c.component).Secrets {
			if !used[placeholder(c.component, name)] {
				t.Errorf("%s declares secret %s but doesn't use it", c.file, name)
			}
		}
	}
}

// TestAmbassadorRoutes: every route names a Service port of the namespace that the same
// component renders, the prefixes don't collide, and the gateway itself defines a listener.
func TestAmbassadorRoutes(t *testing.T) {
	prefixes := map[string]string{}
	kinds := map[string]int{}
	for file, objs := range renderAll(t) {
		ports := map[string]bool{}
		for _, o := range objs {
			if o.GetKind() != "Service" {
				continue
			}
			list, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
			for _, p := range list {
				ports[fmt.Sprintf("%s.kubeflow:%v", o.GetName(), p.(map[string]any)["port"])] = true
			}
		}
		for _, o := range objs {
			config, ok := o.GetAnnotations()["getambassador.io/config"]
			if !ok {
				continue
			}
			if o.GetKind() != "Service" {
				t.Errorf("%s: %s: Emissary reads getambassador.io/config from Services only", file, manifest.IDOf(o))
			}
			for _, doc := range strings.Split(config, "---\n") {
				if strings.TrimSpace(doc) == "" {
					continue
				}
				var r map[string]any
				if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
					t.Errorf("%s: %s: route annotation: %v", file, manifest.IDOf(o), err)
					continue
				}
				kinds[fmt.Sprint(r["kind"])]++
				if r["apiVersion"] != "getambassador.io/v3alpha1" || r["name"] == nil {
					t.Errorf("%s: %s: route %v needs apiVersion getambassador.io/v3alpha1 and a name", file, manifest.IDOf(o), r)
				}
				if r["kind"] != "Mapping" {
					continue
				}
				service := strings.TrimPrefix(fmt.Sprint(r["service"]), "https://")
				if !ports[service] {
					t.Errorf("%s: route %s goes to %s, which is no Service port of the component", file, r["name"], service)
				}
				prefix := fmt.Sprint(r["prefix"])
				if other, dup := prefixes[prefix]; dup && other != file {
					t.Errorf("route prefix %s in both %s and %s", prefix, other, file)
				}
				prefixes[prefix] = file
				if r["hostname"] != "*" {
					t.Errorf("%s: route %s must match every host (hostname: \"*\")", file, r["name"])
				}
			}
		}
	}
	for _, kind := range []string{"Listener", "Host", "Mapping"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s among the routes", kind)
		}
	}
	// /katib/ and /model-registry/ only when asked for (routes_test.go).
	for _, prefix := range []string{"/", "/hub/", "/user/", "/argo/", "/tfjobs/", "/k8s/ui/", "/notebook/jupyter/"} {
		if _, ok := prefixes[prefix]; !ok {
			t.Errorf("no route for %s", prefix)
		}
	}
}

func presets(t *testing.T) map[string][]string {
	t.Helper()
	data, err := kfjsonnet.Library.ReadFile("presets.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string][]string
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("presets.json: %v", err)
	}
	return p
}

func TestPresets(t *testing.T) {
	p := presets(t)
	// Kubeflow v0.3's set, with the Gateway API gateway (Traefik, oauth2-proxy) in place of
	// ambassador: one sign-in in front of every UI, and a data plane that runs in the tests.
	v03 := []string{"gateway", "argo", "centraldashboard", "jupyterhub", "katib", "modeldb", "tf-job-operator", "tf-job-dashboard", "k8s-dashboard", "spartakus"}
	want := map[string][]string{
		"minimal":  {"core", "gateway", "centraldashboard", "jupyterhub"},
		"standard": append([]string{"core"}, v03...),
		"full":     append(append([]string{"core"}, v03...), "nvidia-device-plugin", "nfs-provisioner"),
	}
	sorted := func(s []string) []string { s = append([]string(nil), s...); sort.Strings(s); return s }
	if len(p) != len(want) {
		t.Errorf("presets %v, want minimal, standard and full", reflect.ValueOf(p).MapKeys())
	}
	known := map[string]bool{}
	for _, n := range builtin(t) {
		known[n] = true
	}
	for name, components := range want {
		if !reflect.DeepEqual(sorted(p[name]), sorted(components)) {
			t.Errorf("preset %s = %v, want %v", name, p[name], components)
		}
		for _, c := range p[name] {
			if !known[c] {
				t.Errorf("preset %s names %s, which is no built-in component", name, c)
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// CRDs: apiextensions.k8s.io/v1, structural, validating what users write

func crds(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, objs := range renderAll(t) {
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				out = append(out, o)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no CRDs rendered")
	}
	return out
}

func TestCRDsStructural(t *testing.T) {
	want := map[string]bool{
		"tfjobs.kubeflow.org": true, "pytorchjobs.kubeflow.org": true,
		"experiments.kubeflow.org": true, "suggestions.kubeflow.org": true, "trials.kubeflow.org": true,
		"workflows.argoproj.io": true, "workflowtemplates.argoproj.io": true, "cronworkflows.argoproj.io": true,
	}
	for _, crd := range crds(t) {
		name := crd.GetName()
		delete(want, name)
		if crd.GetAPIVersion() != "apiextensions.k8s.io/v1" {
			t.Errorf("%s: apiVersion %s, want apiextensions.k8s.io/v1", name, crd.GetAPIVersion())
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		if name != plural+"."+group {
			t.Errorf("%s: name must be <plural>.<group> (%s.%s)", name, plural, group)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		storage := 0
		for _, v := range versions {
			v := v.(map[string]any)
			if v["storage"] == true {
				storage++
			}
			schema, ok, _ := unstructured.NestedMap(v, "schema", "openAPIV3Schema")
			if !ok {
				t.Errorf("%s %s: no schema", name, v["name"])
				continue
			}
			if schema["type"] != "object" || schema["x-kubernetes-preserve-unknown-fields"] == true {
				t.Errorf("%s %s: the top level must be a typed object that doesn't preserve unknown fields", name, v["name"])
			}
			props, _ := schema["properties"].(map[string]any)
			if len(props) < 3 {
				t.Errorf("%s %s: the schema names only %d top-level fields", name, v["name"], len(props))
			}
			for _, err := range structural(schema, "openAPIV3Schema", false) {
				t.Errorf("%s %s: not structural: %s", name, v["name"], err)
			}
			cols, _, _ := unstructured.NestedSlice(v, "additionalPrinterColumns")
			for _, c := range cols {
				if p, _ := c.(map[string]any)["jsonPath"].(string); !strings.HasPrefix(p, ".") {
					t.Errorf("%s %s: printer column jsonPath %q must start with '.'", name, v["name"], p)
				}
			}
		}
		if storage != 1 {
			t.Errorf("%s: %d storage versions, want 1", name, storage)
		}
	}
	for name := range want {
		t.Errorf("CRD %s not rendered", name)
	}
}

// structural checks the rules of a structural schema
// (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
// every node has a type (int-or-string excepted), arrays have items, properties and
// additionalProperties exclude each other, and inside anyOf/allOf/oneOf/not there are value
// validations only. Defaults must validate against their schema.
func structural(s map[string]any, path string, inJunctor bool) []string {
	var errs []string
	if inJunctor {
		for _, k := range []string{"type", "description", "default", "additionalProperties", "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-validations"} {
			if _, ok := s[k]; ok {
				errs = append(errs, fmt.Sprintf("%s: %s inside anyOf/allOf/oneOf/not", path, k))
			}
		}
	} else {
		_, typed := s["type"]
		if !typed && s["x-kubernetes-int-or-string"] != true {
			errs = append(errs, path+": no type")
		}
		if s["type"] == "array" && s["items"] == nil {
			errs = append(errs, path+": array without items")
		}
		if s["properties"] != nil && s["additionalProperties"] != nil {
			errs = append(errs, path+": both properties and additionalProperties")
		}
		if (s["x-kubernetes-preserve-unknown-fields"] == true || s["x-kubernetes-embedded-resource"] == true) && s["type"] != "object" {
			errs = append(errs, path+": preserve-unknown-fields or embedded-resource on a non-object")
		}
		if d, ok := s["default"]; ok {
			for _, e := range validate(s, d, path+".default") {
				errs = append(errs, "invalid default: "+e)
			}
		}
		for _, r := range asSlice(s["x-kubernetes-validations"]) {
			if rule, _ := r.(map[string]any)["rule"].(string); strings.TrimSpace(rule) == "" {
				errs = append(errs, path+": empty validation rule")
			}
		}
	}
	for name, p := range asMap(s["properties"]) {
		errs = append(errs, structural(p.(map[string]any), path+".properties."+name, inJunctor)...)
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		errs = append(errs, structural(ap, path+".additionalProperties", inJunctor)...)
	}
	if items, ok := s["items"].(map[string]any); ok {
		errs = append(errs, structural(items, path+".items", inJunctor)...)
	}
	for _, j := range []string{"anyOf", "allOf", "oneOf"} {
		for i, sub := range asSlice(s[j]) {
			errs = append(errs, structural(sub.(map[string]any), fmt.Sprintf("%s.%s[%d]", path, j, i), true)...)
		}
	}
	if not, ok := s["not"].(map[string]any); ok {
		errs = append(errs, structural(not, path+".not", true)...)
	}
	return errs
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asSlice(v any) []any        { s, _ := v.([]any); return s }

// validate checks a value against an OpenAPI v3 schema the way the API server does after
// pruning: unknown fields are ignored (pruned), CEL rules (x-kubernetes-validations) are not
// evaluated here. It returns one message per violation, each starting with the field's path.
func validate(s map[string]any, v any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if enum := asSlice(s["enum"]); enum != nil {
		found := false
		for _, e := range enum {
			if reflect.DeepEqual(normalizeNumber(e), normalizeNumber(v)) {
				found = true
			}
		}
		if !found {
			fail("Unsupported value %v: supported values: %v", v, enum)
		}
	}
	if anyOf := asSlice(s["anyOf"]); anyOf != nil && !anyValid(anyOf, v, path) {
		fail("must match one of %v", anyOf)
	}
	if m, ok := v.(map[string]any); ok {
		// Also inside anyOf, where required comes without a type.
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				errs = append(errs, joinKey(path, r.(string))+": Required value")
			}
		}
	}
	if s["x-kubernetes-int-or-string"] == true {
		if _, isString := v.(string); !isString && !isInteger(v) {
			fail("must be an integer or a string")
		}
		return errs
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("must be an object")
			return errs
		}
		if s["x-kubernetes-embedded-resource"] == true {
			for _, f := range []string{"apiVersion", "kind"} {
				if str, _ := m[f].(string); str == "" {
					errs = append(errs, joinKey(path, f)+": Required value")
				}
			}
		}
		if min, ok := number(s["minProperties"]); ok && float64(len(m)) < min {
			fail("must have at least %v properties", min)
		}
		if max, ok := number(s["maxProperties"]); ok && float64(len(m)) > max {
			fail("must have at most %v properties", max)
		}
		props := asMap(s["properties"])
		for k, e := range m {
			if p, ok := props[k]; ok {
				errs = append(errs, validate(p.(map[string]any), e, joinKey(path, k))...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				errs = append(errs, validate(ap, e, joinKey(path, k))...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("must be an array")
			return errs
		}
		if min, ok := number(s["minItems"]); ok && float64(len(a)) < min {
			fail("must have at least %v items", min)
		}
		if max, ok := number(s["maxItems"]); ok && float64(len(a)) > max {
			fail("must have at most %v items", max)
		}
		for i, e := range a {
			errs = append(errs, validate(asMap(s["items"]), e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("must be a string")
			return errs
		}
		if min, ok := number(s["minLength"]); ok && float64(len(str)) < min {
			fail("must be at least %v characters", min)
		}
		if max, ok := number(s["maxLength"]); ok && float64(len(str)) > max {
			fail("must be at most %v characters", max)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("must match %s", p)
		}
	case "integer", "number":
		n, ok := number(v)
		if !ok || (s["type"] == "integer" && !isInteger(v)) {
			fail("must be of type %s", s["type"])
			return errs
		}
		if min, ok := number(s["minimum"]); ok && n < min {
			fail("should be greater than or equal to %v", min)
		}
		if max, ok := number(s["maximum"]); ok && n > max {
			fail("should be less than or equal to %v", max)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("must be a boolean")
		}
	}
	return errs
}

func anyValid(schemas []any, v any, path string) bool {
	for _, sub := range schemas {
		if len(validate(sub.(map[string]any), v, path)) == 0 {
			return true
		}
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func isInteger(v any) bool {
	n, ok := number(v)
	return ok && n == math.Trunc(n)
}

func normalizeNumber(v any) any {
	if n, ok := number(v); ok {
		return n
	}
	return v
}

// TestSampleCustomResources: the samples the end-to-end test applies. Valid ones pass the CRD
// schemas; each invalid one is rejected at the path its "# rejected-at:" comment names.
func TestSampleCustomResources(t *testing.T) {
	schemas := map[string]map[string]any{} // group/version/kind → schema
	for _, crd := range crds(t) {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			schema, _, _ := unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema")
			schemas[group+"/"+v.(map[string]any)["name"].(string)+"/"+kind] = schema
		}
	}
	rejectedAt := regexp.MustCompile(`(?m)^# rejected-at: (\S+)`)
	for _, sample := range []string{"tfjob", "experiment", "workflow"} {
		for _, validity := range []string{"valid", "invalid"} {
			file := filepath.Join("testdata", "samples", sample+"-"+validity+".yaml")
			t.Run(filepath.Base(file), func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				objs, err := manifest.Decode(file, data)
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != 1 {
					t.Fatalf("%d objects, want 1", len(objs))
				}
				o := objs[0]
				if o.GetNamespace() != "kubeflow" {
					t.Errorf("namespace %q, want kubeflow", o.GetNamespace())
				}
				gvk := o.GroupVersionKind()
				schema, ok := schemas[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind]
				if !ok {
					t.Fatalf("no CRD serves %s", gvk)
				}
				errs := validate(schema, o.Object, "")
				if validity == "valid" {
					for _, e := range errs {
						t.Errorf("rejected: %s", e)
					}
					return
				}
				m := rejectedAt.FindSubmatch(data)
				if m == nil {
					t.Fatal(`an invalid sample needs a "# rejected-at: <path>" comment`)
				}
				found := false
				for _, e := range errs {
					if strings.HasPrefix(e, string(m[1])+":") {
						found = true
					}
				}
				if !found {
					t.Errorf("not rejected at %s; errors: %v", m[1], errs)
				}
			})
		}
	}
}
