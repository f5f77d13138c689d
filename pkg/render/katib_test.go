package render

import (
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// The katib component is held against Katib v0.19.0's own release files. Each fact below is
// quoted from the file named next to it (github.com/kubeflow/katib at tag v0.19.0).

// katibRelease is the tag every Katib image must carry.
const katibRelease = "v0.19.0"

// katibUpstreamImages: the images that tag's manifests name. Katib publishes under
// ghcr.io/kubeflow/katib from v0.18 on (v0.17.0 exists only as docker.io/kubeflowkatib/*).
var katibUpstreamImages = map[string]string{
	// manifests/v1beta1/installs/katib-standalone/kustomization.yaml (images:)
	"katib-controller": "ghcr.io/kubeflow/katib/katib-controller:v0.19.0",
	"katib-db-manager": "ghcr.io/kubeflow/katib/katib-db-manager:v0.19.0",
	"katib-ui":         "ghcr.io/kubeflow/katib/katib-ui:v0.19.0",
	// manifests/v1beta1/installs/katib-standalone/katib-config.yaml (runtime:)
	"StdOut":               "ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0",
	"File":                 "ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0",
	"TensorFlowEvent":      "ghcr.io/kubeflow/katib/tfevent-metrics-collector:v0.19.0",
	"random":               "ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0",
	"tpe":                  "ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0",
	"grid":                 "ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0",
	"multivariate-tpe":     "ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0",
	"hyperband":            "ghcr.io/kubeflow/katib/suggestion-hyperband:v0.19.0",
	"bayesianoptimization": "ghcr.io/kubeflow/katib/suggestion-skopt:v0.19.0",
	"cmaes":                "ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0",
	"sobol":                "ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0",
	"medianstop":           "ghcr.io/kubeflow/katib/earlystopping-medianstop:v0.19.0",
	// manifests/v1beta1/components/controller/trial-templates.yaml
	"trial-template": "ghcr.io/kubeflow/katib/pytorch-mnist-cpu:v0.19.0",
}

// allKatibSuggestions renders katib with every algorithm the component knows.
func allKatibSuggestions(t *testing.T) map[string]any {
	t.Helper()
	all := map[string]any{}
	for name, image := range imageLibrary(t) {
		if a, ok := strings.CutPrefix(name, "katibSuggestions."); ok {
			all[a] = image
		}
	}
	return all
}

// katibConfig decodes the rendered katib-config ConfigMap.
func katibConfig(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	cm := find(t, objs, "ConfigMap", "katib-config")
	data, _, _ := unstructured.NestedString(cm.Object, "data", "katib-config.yaml")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatalf("katib-config.yaml: %v", err)
	}
	return cfg
}

func TestKatibImagesAreTheRelease(t *testing.T) {
	objs := render(t, "katib", map[string]any{"suggestions": allKatibSuggestions(t)})
	for _, name := range []string{"katib-controller", "katib-db-manager", "katib-ui"} {
		d := find(t, objs, "Deployment", name)
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if got := containers[0].(map[string]any)["image"]; got != katibUpstreamImages[name] {
			t.Errorf("Deployment %s: image %v, want %s (katib-standalone/kustomization.yaml@%s)", name, got, katibUpstreamImages[name], katibRelease)
		}
	}
	runtime := asMap(katibConfig(t, objs)["runtime"])
	seen := 0
	for _, section := range []struct{ list, key string }{
		{"metricsCollectors", "kind"}, {"suggestions", "algorithmName"}, {"earlyStoppings", "algorithmName"},
	} {
		for _, e := range asSlice(runtime[section.list]) {
			m := asMap(e)
			key, _ := m[section.key].(string)
			want, ok := katibUpstreamImages[key]
			if !ok {
				t.Errorf("katib-config %s %s: not in Katib %s's katib-config.yaml", section.list, key, katibRelease)
				continue
			}
			seen++
			if m["image"] != want {
				t.Errorf("katib-config %s %s: image %v, want %s (katib-standalone/katib-config.yaml@%s)", section.list, key, m["image"], want, katibRelease)
			}
		}
	}
	if want := 12; seen != want {
		t.Errorf("katib-config names %d runtime images, want %d", seen, want)
	}
	// Every Katib image anywhere in the rendering (trial templates included) is of the release.
	for _, o := range objs {
		walkStrings(o.Object, "", func(path, s string) {
			for _, line := range strings.Split(s, "\n") {
				if i := strings.Index(line, "ghcr.io/kubeflow/katib/"); i >= 0 && !strings.Contains(line[i:], ":"+katibRelease) {
					t.Errorf("%s %s: Katib image not at %s: %s", manifest.IDOf(o), path, katibRelease, strings.TrimSpace(line))
				}
			}
		})
	}
}

// The default random suggestion is the one upstream's katib-config@v0.19.0 names (hyperopt);
// goptuna serves random too (pkg/suggestion/v1beta1/goptuna/service.go@v0.19.0: random, tpe,
// cmaes, sobol) and can be chosen with the suggestions parameter.
func TestKatibDefaultSuggestionsAsUpstream(t *testing.T) {
	runtime := asMap(katibConfig(t, render(t, "katib", nil))["runtime"])
	var got []string
	for _, e := range asSlice(runtime["suggestions"]) {
		m := asMap(e)
		got = append(got, m["algorithmName"].(string)+"="+m["image"].(string))
	}
	sort.Strings(got)
	want := []string{"grid=" + katibUpstreamImages["grid"], "random=" + katibUpstreamImages["random"]}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("default suggestions %v, want %v", got, want)
	}
	goptuna := render(t, "katib", map[string]any{"suggestions": map[string]any{"random": katibUpstreamImages["cmaes"]}})
	s := asSlice(asMap(katibConfig(t, goptuna)["runtime"])["suggestions"])
	if len(s) != 1 || asMap(s[0])["image"] != katibUpstreamImages["cmaes"] {
		t.Errorf("suggestions {random: goptuna}: katib-config suggestions %v", s)
	}
}

func katibWebhooks(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		// Upstream's name (components/webhook/webhooks.yaml@v0.19.0).
		c := find(t, objs, kind, "katib.kubeflow.org")
		hooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
		for _, h := range hooks {
			out[asMap(h)["name"].(string)] = asMap(h)
		}
	}
	return out
}

// Upstream sets no failurePolicy (components/webhook/webhooks.yaml@v0.19.0), so the API's
// default, Fail, applies: an Experiment is never admitted unvalidated, and a trial pod never
// starts without its metrics collector (which would end its trial MetricsUnavailable).
func TestKatibWebhooksFailByDefault(t *testing.T) {
	hooks := katibWebhooks(t, render(t, "katib", nil))
	for _, name := range []string{"validator.experiment.katib.kubeflow.org", "defaulter.experiment.katib.kubeflow.org", "mutator.pod.katib.kubeflow.org"} {
		h, ok := hooks[name]
		if !ok {
			t.Errorf("webhook %s not rendered (components/webhook/webhooks.yaml@v0.19.0 has it)", name)
			continue
		}
		if h["failurePolicy"] != "Fail" {
			t.Errorf("webhook %s: failurePolicy %v, want Fail", name, h["failurePolicy"])
		}
	}
}

// The pod mutator must reach trial pods in any namespace without a namespace label (core labels
// none), and must not reach the platform's own pods. Trial pods carry no Katib label when they
// are created: the webhook itself adds katib.kubeflow.org/trial after finding the Trial among the
// pod's owners (pkg/webhook/v1beta1/pod/inject_webhook.go@v0.19.0, getKatibJob and
// mutatePodMetadata). So the component selects by the pod's controlling owner: a kind from
// trialResources. The conformance test proves the expressions with the real API server.
func TestKatibPodMutatorScope(t *testing.T) {
	resources := []any{"Job.v1.batch", "TFJob.v1.kubeflow.org", "PyTorchJob.v1.kubeflow.org", "MPIJob.v1.kubeflow.org"}
	h := katibWebhooks(t, render(t, "katib", map[string]any{"trialResources": resources}))["mutator.pod.katib.kubeflow.org"]
	if sel, ok := h["namespaceSelector"]; ok {
		t.Errorf("pod mutator has namespaceSelector %v: trial pods of unlabelled namespaces would get no metrics collector", sel)
	}
	if sel, ok := h["objectSelector"]; ok {
		t.Errorf("pod mutator has objectSelector %v: trial pods carry no Katib label at creation", sel)
	}
	conditions := map[string]string{}
	for _, c := range asSlice(h["matchConditions"]) {
		conditions[asMap(c)["name"].(string)] = asMap(c)["expression"].(string)
	}
	if got, want := conditions["exclude-katib-controller"], `request.userInfo.username != "system:serviceaccount:kubeflow:katib-controller"`; got != want {
		t.Errorf("exclude-katib-controller condition %q, want upstream's %q", got, want)
	}
	owners := conditions["trial-workload-pods"]
	for _, want := range []string{
		"(o.apiVersion == 'batch/v1' && o.kind == 'Job')",
		"(o.apiVersion == 'kubeflow.org/v1' && o.kind == 'TFJob')",
		"(o.apiVersion == 'kubeflow.org/v1' && o.kind == 'PyTorchJob')",
		"(o.apiVersion == 'kubeflow.org/v1' && o.kind == 'MPIJob')",
	} {
		if !strings.Contains(owners, want) {
			t.Errorf("trial-workload-pods condition %q does not select pods controlled by %s", owners, want)
		}
	}
	// A condition that errors makes the API server apply failurePolicy (Fail): every optional
	// field is tested with has() before it is read.
	for _, guard := range []string{"has(object.metadata.ownerReferences)", "has(o.controller) && o.controller"} {
		if !strings.Contains(owners, guard) {
			t.Errorf("trial-workload-pods condition %q reads a field it does not test with %s", owners, guard)
		}
	}
	for _, platform := range []string{"ReplicaSet", "StatefulSet", "DaemonSet", "Workflow"} {
		if strings.Contains(owners, "'"+platform+"'") {
			t.Errorf("trial-workload-pods condition selects pods of %s", platform)
		}
	}
}

// The UI's create-experiment page lists ConfigMaps labelled katib.kubeflow.org/component:
// trial-templates (pkg/controller.v1beta1/consts/const.go@v0.19.0, LabelTrialTemplateConfigMap*)
// in every namespace it can list (pkg/ui/v1beta1/util.go@v0.19.0, getTrialTemplatesViewList). It
// gets no access to namespaces, so it falls back to its own (getAvailableNamespaces), where the
// templates are and where its Role lets it list ConfigMaps.
func TestKatibTrialTemplatesForTheUI(t *testing.T) {
	objs := render(t, "katib", nil)
	var templates []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetLabels()["katib.kubeflow.org/component"] == "trial-templates" {
			templates = append(templates, o)
		}
	}
	if len(templates) == 0 {
		t.Fatal("no ConfigMap labelled katib.kubeflow.org/component=trial-templates: the UI's create-experiment page has no template")
	}
	trialKinds := map[string]bool{}
	for _, r := range []string{"Job.v1.batch", "TFJob.v1.kubeflow.org", "PyTorchJob.v1.kubeflow.org"} {
		parts := strings.SplitN(r, ".", 3)
		trialKinds[parts[2]+"/"+parts[1]+"/"+parts[0]] = true
	}
	for _, cm := range templates {
		if cm.GetNamespace() != "kubeflow" {
			t.Errorf("trial templates %s in namespace %s, want the app's", cm.GetName(), cm.GetNamespace())
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		for key, text := range data {
			var job unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(text), &job.Object); err != nil {
				t.Errorf("%s %s: %v", cm.GetName(), key, err)
				continue
			}
			gvk := job.GroupVersionKind()
			if !trialKinds[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind] {
				t.Errorf("%s %s: kind %s is not a default trial resource", cm.GetName(), key, gvk)
			}
			if !strings.Contains(text, "${trialParameters.") {
				t.Errorf("%s %s: uses no trial parameter", cm.GetName(), key)
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" {
			for _, s := range asSlice(o.Object["subjects"]) {
				if asMap(s)["name"] == "katib-ui" {
					t.Errorf("%s binds katib-ui cluster-wide: the UI would list namespaces whose ConfigMaps it cannot read", o.GetName())
				}
			}
		}
	}
	if !allows(t, find(t, objs, "Role", "katib-ui"), "", "configmaps", "list") {
		t.Error("Role katib-ui does not let the UI list ConfigMaps in its namespace")
	}
}

// allows reports whether a Role/ClusterRole grants verb on group/resource.
func allows(t *testing.T, role *unstructured.Unstructured, group, resource, verb string) bool {
	t.Helper()
	has := func(list []any, want string) bool {
		for _, v := range list {
			if v == want || v == "*" {
				return true
			}
		}
		return false
	}
	for _, r := range asSlice(role.Object["rules"]) {
		m := asMap(r)
		if has(asSlice(m["apiGroups"]), group) && has(asSlice(m["resources"]), resource) && has(asSlice(m["verbs"]), verb) {
			return true
		}
	}
	return false
}

// The controller's ClusterRole has what upstream's has for the kinds this component runs
// (manifests/v1beta1/components/controller/rbac.yaml@v0.19.0), except what only the certificate
// generator uses (pkg/certgenerator/v1beta1/generator.go), which is off (see
// TestKatibCertificateFromKfdeploy).
func TestKatibControllerRBACAsUpstream(t *testing.T) {
	role := find(t, render(t, "katib", nil), "ClusterRole", "kubeflow-katib-controller")
	upstream := []struct {
		group     string
		resources []string
		verbs     []string
	}{
		{"", []string{"services"}, []string{"get", "list", "watch", "create", "delete"}},
		{"", []string{"events"}, []string{"create", "patch", "update"}},
		{"", []string{"serviceaccounts", "persistentvolumes", "persistentvolumeclaims"}, []string{"get", "list", "watch", "create"}},
		{"", []string{"namespaces", "configmaps"}, []string{"get", "list", "watch"}},
		{"", []string{"pods", "pods/status"}, []string{"get"}},
		{"apps", []string{"deployments"}, []string{"get", "list", "watch", "create", "delete"}},
		{"rbac.authorization.k8s.io", []string{"roles", "rolebindings"}, []string{"get", "create", "list", "watch"}},
		{"batch", []string{"jobs", "cronjobs"}, []string{"get", "list", "watch", "create", "delete"}},
		{"kubeflow.org", []string{"tfjobs", "pytorchjobs", "mpijobs", "xgboostjobs"}, []string{"get", "list", "watch", "create", "delete"}},
		{"kubeflow.org", []string{"experiments", "experiments/status", "experiments/finalizers", "trials", "trials/status", "trials/finalizers", "suggestions", "suggestions/status", "suggestions/finalizers"}, []string{"*"}},
	}
	for _, u := range upstream {
		for _, r := range u.resources {
			for _, v := range u.verbs {
				if !allows(t, role, u.group, r, v) {
					t.Errorf("katib-controller may not %s %s.%s (rbac.yaml@v0.19.0 grants it)", v, r, u.group)
				}
			}
		}
	}
}

// First boot of the MySQL image initialises the data directory with a temporary server on the
// socket only, then creates the user; a liveness kill in between leaves a data directory the
// entrypoint takes as initialised and a user that never exists. The liveness probe must wait
// for a startup probe that passes only once the application's user can log in over TCP.
func TestMySQLStartupProbe(t *testing.T) {
	for _, c := range []struct{ component, deployment string }{{"katib", "katib-mysql"}, {"modeldb", "modeldb-mysql"}} {
		d := find(t, render(t, c.component, nil), "Deployment", c.deployment)
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		mysqlC := asMap(containers[0])
		startup := asMap(mysqlC["startupProbe"])
		if startup == nil {
			t.Errorf("%s: no startupProbe: the liveness probe can kill first-boot initialisation", c.deployment)
			continue
		}
		cmd := strings.Join(toStrings(asSlice(asMap(startup["exec"])["command"])), " ")
		for _, want := range []string{"-h 127.0.0.1", `-u "$MYSQL_USER"`, `-D "$MYSQL_DATABASE"`} {
			if !strings.Contains(cmd, want) {
				t.Errorf("%s: startup probe %q does not check %s (the temporary server of first boot listens on no TCP port and has no such user)", c.deployment, cmd, want)
			}
		}
		period, _ := number(startup["periodSeconds"])
		failures, _ := number(startup["failureThreshold"])
		if period*failures < 300 {
			t.Errorf("%s: startup probe gives initialisation %vs, want at least 300s", c.deployment, period*failures)
		}
	}
}

func toStrings(v []any) []string {
	out := make([]string, 0, len(v))
	for _, e := range v {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// Katib's Experiment validator refuses every Experiment in a namespace that lacks
// katib.kubeflow.org/metrics-collector-injection: enabled
// (pkg/webhook/v1beta1/experiment/validation_webhook.go@v0.19.0), whatever namespaceLabels say.
func TestAppNamespaceAdmitsExperiments(t *testing.T) {
	for _, params := range []map[string]any{nil, {"namespaceLabels": map[string]any{"team": "ml"}}} {
		ns := find(t, render(t, "core", params), "Namespace", "kubeflow")
		if got := ns.GetLabels()["katib.kubeflow.org/metrics-collector-injection"]; got != "enabled" {
			t.Errorf("core with %v: namespace label katib.kubeflow.org/metrics-collector-injection=%q, want enabled", params, got)
		}
	}
}

// Katib's certificate generator is off, so that the controller needs no Secrets: with
// certGenerator.enable false and neither webhookServiceName nor webhookSecretName (either turns it
// back on: setCertGeneratorConfig, pkg/apis/config/v1beta1/defaults.go@v0.19.0) the controller
// registers no rotator and serves the webhooks from tls.crt and tls.key in /tmp/cert
// (consts.CertDir; cmd/katib-controller/v1beta1/main.go@v0.19.0, controller-runtime's defaults).
// kfdeploy issues that certificate into the mounted Secret and fills in both webhook
// configurations' caBundle from its CA; the controller may then neither read Secrets nor
// change webhook configurations.
func TestKatibCertificateFromKfdeploy(t *testing.T) {
	objs := render(t, "katib", nil)
	gen := asMap(asMap(katibConfig(t, objs)["init"])["certGenerator"])
	if len(gen) != 1 || gen["enable"] != false {
		t.Errorf("katib-config init.certGenerator = %v, want only enable: false", gen)
	}
	secret := find(t, objs, "Secret", "katib-webhook-cert")
	a := secret.GetAnnotations()
	dns := strings.Split(a["kfdeploy.dev/certificate-dns-names"], ",")
	sort.Strings(dns)
	if a["kfdeploy.dev/certificate"] != "katib/webhook" || a["kfdeploy.dev/certificate-trusted-by"] != "apiserver" ||
		strings.Join(dns, ",") != "katib-controller.kubeflow.svc,katib-controller.kubeflow.svc.cluster.local" {
		t.Errorf("Secret katib-webhook-cert annotations %v: want kfdeploy's certificate katib/webhook for the katib-controller Service, trusted by the API server", a)
	}
	if typ, _, _ := unstructured.NestedString(secret.Object, "type"); typ != "Opaque" {
		t.Errorf("Secret katib-webhook-cert type %q, want Opaque (as before: a Secret's type cannot change)", typ)
	}
	d := find(t, objs, "Deployment", "katib-controller")
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	mounted := false
	for _, m := range asSlice(asMap(containers[0])["volumeMounts"]) {
		for _, v := range volumes {
			if asMap(m)["mountPath"] == "/tmp/cert" && asMap(v)["name"] == asMap(m)["name"] &&
				asMap(asMap(v)["secret"])["secretName"] == "katib-webhook-cert" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Error("the controller does not mount Secret katib-webhook-cert at /tmp/cert")
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		if got := find(t, objs, kind, "katib.kubeflow.org").GetAnnotations()["kfdeploy.dev/ca-bundle"]; got != "katib/webhook" {
			t.Errorf("%s katib.kubeflow.org: kfdeploy.dev/ca-bundle %q, want katib/webhook", kind, got)
		}
	}
	role := find(t, objs, "ClusterRole", "kubeflow-katib-controller")
	for _, res := range []struct{ group, resource string }{
		{"", "secrets"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
	} {
		for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete"} {
			if allows(t, role, res.group, res.resource, verb) {
				t.Errorf("katib-controller may %s %s.%s, which only its certificate generator (off) does", verb, res.resource, res.group)
			}
		}
	}
}
