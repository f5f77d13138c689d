package render

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// The tf-job-operator component held against the Kubeflow Training Operator v1.9.4
// (github.com/kubeflow/training-operator, tag v1.9.4). Every expectation cites the upstream
// file it comes from; docs/components.md says the same in prose.

const trainop = "tf-job-operator"

// trainopObject returns the one rendered object of that kind and name.
func trainopObject(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("%s renders no %s %s", trainop, kind, name)
	return nil
}

func trainopContainer(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	pod, _ := podSpec(trainopObject(t, objs, "Deployment", "training-operator"))
	containers, _ := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("training-operator has %d containers, want 1", len(containers))
	}
	return containers[0].(map[string]any)
}

// flagValues parses --name=value arguments; a flag given twice keeps every value.
func flagValues(t *testing.T, args []any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, a := range args {
		s := a.(string)
		name, value, ok := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if !strings.HasPrefix(s, "--") || !ok {
			t.Errorf("argument %q is not of the form --flag=value", s)
			continue
		}
		out[name] = append(out[name], value)
	}
	return out
}

func TestTrainingOperatorDeployment(t *testing.T) {
	objs := render(t, trainop, nil)
	c := trainopContainer(t, objs)

	// manifests/overlays/standalone/kustomization.yaml@v1.9.4: image
	// ghcr.io/kubeflow/training-v1/training-operator, newTag v1-93c5489.
	if got, want := c["image"], "ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489"; got != want {
		t.Errorf("image %v, want %s", got, want)
	}
	// build/images/training-operator/Dockerfile@v1.9.4: ENTRYPOINT ["/manager"].
	if cmd, _ := c["command"].([]any); len(cmd) != 1 || cmd[0] != "/manager" {
		t.Errorf("command %v, want [/manager]", c["command"])
	}

	// cmd/training-operator.v1/main.go@v1.9.4 defines these flags (plus zap's --zap-*).
	defined := []string{
		"metrics-bind-address", "health-probe-bind-address", "leader-elect", "leader-election-id",
		"enable-scheme", "gang-scheduler-name", "namespace", "controller-threads", "kube-api-qps",
		"kube-api-burst", "pytorch-init-container-image", "pytorch-init-container-template-file",
		"pytorch-init-container-max-tries", "mpi-kubectl-delivery-image", "webhook-server-port",
		"webhook-service-name", "webhook-secret-name",
	}
	args, _ := c["args"].([]any)
	flags := flagValues(t, args)
	for name := range flags {
		if !slices.Contains(defined, name) && !strings.HasPrefix(name, "zap-") {
			t.Errorf("--%s is not a flag of the v1.9.4 manager: it would exit at start", name)
		}
	}
	want := map[string][]string{
		// Single-namespace mode: the cache and so the Role cover this namespace only.
		"namespace": {"kubeflow"},
		// EnabledSchemes.Set (pkg/controller.v1/register_controller.go) matches case-insensitively.
		"enable-scheme":                {"tfjob", "pytorchjob"},
		"metrics-bind-address":         {":8080"},
		"health-probe-bind-address":    {":8081"},
		"webhook-server-port":          {"9443"},
		"webhook-service-name":         {"training-operator"},
		"webhook-secret-name":          {"training-operator-webhook-cert"},
		"pytorch-init-container-image": {"docker.io/library/alpine:3.10"},
	}
	for name, values := range want {
		if !slices.Equal(flags[name], values) {
			t.Errorf("--%s = %v, want %v", name, flags[name], values)
		}
	}
	if _, ok := flags["leader-elect"]; ok {
		t.Error("--leader-elect is set, but the Role grants no Leases")
	}

	// pkg/cert/cert.go@v1.9.4: the certificate Secret and the Service's DNS name are in
	// $MY_POD_NAMESPACE (default "kubeflow", whatever namespace the pod is in).
	var podNamespace bool
	for _, e := range asSlice(c["env"]) {
		e := e.(map[string]any)
		path, _, _ := unstructured.NestedString(e, "valueFrom", "fieldRef", "fieldPath")
		podNamespace = podNamespace || (e["name"] == "MY_POD_NAMESPACE" && path == "metadata.namespace")
	}
	if !podNamespace {
		t.Error("MY_POD_NAMESPACE is not set from metadata.namespace")
	}

	ports := map[string]float64{}
	for _, p := range asSlice(c["ports"]) {
		p := p.(map[string]any)
		ports[p["name"].(string)], _ = number(p["containerPort"])
	}
	for name, port := range map[string]float64{"metrics": 8080, "health": 8081, "webhook": 9443} {
		if ports[name] != port {
			t.Errorf("container port %s = %v, want %v (the flag above)", name, ports[name], port)
		}
	}
	// main.go@v1.9.4: /healthz pings, /readyz waits for the certificate and the webhook server.
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		got, _, _ := unstructured.NestedString(c, probe, "httpGet", "path")
		port, _, _ := unstructured.NestedFieldNoCopy(c, probe, "httpGet", "port")
		if got != path || port != "health" {
			t.Errorf("%s is %s on %v, want %s on the health port", probe, got, port, path)
		}
	}

	// pkg/cert/cert.go@v1.9.4: certDir /tmp/k8s-webhook-server/serving-certs, filled from the
	// Secret the rotator updates (it never creates it, so the component must).
	pod, _ := podSpec(trainopObject(t, objs, "Deployment", "training-operator"))
	volumes := map[string]string{}
	for _, v := range asSlice(pod["volumes"]) {
		name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
		volumes[v.(map[string]any)["name"].(string)] = name
	}
	mounted := false
	for _, m := range asSlice(c["volumeMounts"]) {
		m := m.(map[string]any)
		if m["mountPath"] == "/tmp/k8s-webhook-server/serving-certs" && volumes[m["name"].(string)] == "training-operator-webhook-cert" {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the Secret training-operator-webhook-cert is not mounted at /tmp/k8s-webhook-server/serving-certs")
	}
	secret := trainopObject(t, objs, "Secret", "training-operator-webhook-cert")
	if _, ok := secret.Object["data"]; ok {
		t.Error("the certificate Secret has data: kfdeploy would own and reset what the operator writes")
	}
	if _, ok := secret.Object["stringData"]; ok {
		t.Error("the certificate Secret has stringData: kfdeploy would own and reset what the operator writes")
	}
	// Without leader election two managers must not overlap in a rollout; and the strategy must
	// stay RollingUpdate, which an app applied by earlier releases (no strategy) can switch to.
	strategy, _, _ := unstructured.NestedMap(trainopObject(t, objs, "Deployment", "training-operator").Object, "spec", "strategy")
	surge, _ := number(asMap(strategy["rollingUpdate"])["maxSurge"])
	if strategy["type"] != "RollingUpdate" || asMap(strategy["rollingUpdate"])["maxSurge"] == nil || surge != 0 {
		t.Errorf("strategy %v, want RollingUpdate with maxSurge 0", strategy)
	}
}

func TestTrainingOperatorWebhooks(t *testing.T) {
	objs := render(t, trainop, nil)
	// The certificate's DNS name is <--webhook-service-name>.<namespace>.svc, so the webhooks
	// must call that Service, on a port that reaches the webhook server.
	svc := trainopObject(t, objs, "Service", "training-operator")
	var webhookPort float64
	for _, p := range asSlice(svc.Object["spec"].(map[string]any)["ports"]) {
		p := p.(map[string]any)
		if p["targetPort"] == "webhook" {
			webhookPort, _ = number(p["port"])
		}
	}
	if webhookPort == 0 {
		t.Fatal("the Service has no port to the webhook server")
	}

	// cmd/training-operator.v1/main.go@v1.9.4: webhookConfigurationName is a constant; the
	// rotator writes the CA into the configuration of that name only.
	vwc := trainopObject(t, objs, "ValidatingWebhookConfiguration", "validator.training-operator.kubeflow.org")
	// The kubebuilder:webhook markers of pkg/webhooks/{tensorflow,pytorch}/*_webhook.go@v1.9.4.
	want := map[string][2]string{
		"validator.tfjob.training-operator.kubeflow.org":      {"/validate-kubeflow-org-v1-tfjob", "tfjobs"},
		"validator.pytorchjob.training-operator.kubeflow.org": {"/validate-kubeflow-org-v1-pytorchjob", "pytorchjobs"},
	}
	hooks := asSlice(vwc.Object["webhooks"])
	if len(hooks) != len(want) {
		t.Errorf("%d webhooks, want %d (the enabled schemes)", len(hooks), len(want))
	}
	for _, h := range hooks {
		h := h.(map[string]any)
		name, _ := h["name"].(string)
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected webhook %s", name)
			continue
		}
		if h["failurePolicy"] != "Fail" {
			t.Errorf("%s: failurePolicy %v, want Fail (the marker's failurePolicy=fail)", name, h["failurePolicy"])
		}
		svcRef, _, _ := unstructured.NestedMap(h, "clientConfig", "service")
		port, _ := number(svcRef["port"])
		if svcRef["name"] != "training-operator" || svcRef["namespace"] != "kubeflow" || svcRef["path"] != w[0] || port != webhookPort {
			t.Errorf("%s: calls %v, want training-operator.kubeflow:%v%s", name, svcRef, webhookPort, w[0])
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(h, "clientConfig", "caBundle"); ok {
			t.Errorf("%s: has a caBundle; the operator writes it and kfdeploy must not own it", name)
		}
		rules := asSlice(h["rules"])
		if len(rules) != 1 || !slices.Equal(asSlice(rules[0].(map[string]any)["resources"]), []any{w[1]}) ||
			!slices.Equal(asSlice(rules[0].(map[string]any)["operations"]), []any{"CREATE", "UPDATE"}) {
			t.Errorf("%s: rules %v, want CREATE and UPDATE of %s", name, rules, w[1])
		}
	}
}

// rbacNeed is one API call of the operator.
type rbacNeed struct {
	group, resource, verb string
	name                  string // a single object, or "" for any
	cluster               bool   // the object is cluster-scoped
	source                string // where the call is, @v1.9.4
}

// trainopCalls are the API calls of the v1.9.4 manager with --enable-scheme=tfjob,pytorchjob
// and --namespace (no gang scheduler: PodGroups are watched only when their CRDs exist).
var trainopCalls = func() []rbacNeed {
	var needs []rbacNeed
	add := func(group, resource, name string, cluster bool, source string, verbs ...string) {
		for _, v := range verbs {
			needs = append(needs, rbacNeed{group, resource, v, name, cluster, source})
		}
	}
	for _, job := range []string{"tfjobs", "pytorchjobs"} {
		src := "pkg/controller.v1/{tensorflow,pytorch}/*_controller.go (Watch, Get, apiReader.Get, Delete on TTL)"
		add("kubeflow.org", job, "", false, src, "get", "list", "watch", "delete")
		add("kubeflow.org", job+"/status", "", false, "UpdateJobStatusInApiServer: Status().Update", "update")
		add("kubeflow.org", job+"/finalizers", "", false, "owner references with blockOwnerDeletion (kubebuilder marker)", "update")
	}
	for _, r := range []string{"pods", "services"} {
		add("", r, "", false, "pkg/controller.v1/control/{pod,service}_control.go and the cache's watches", "get", "list", "watch", "create", "patch", "delete")
	}
	add("", "events", "", false, "the controllers' record.EventRecorder", "create", "patch")
	add("autoscaling", "horizontalpodautoscalers", "", false, "pkg/controller.v1/pytorch/hpa.go", "get", "list", "watch", "create", "update", "delete")
	add("", "secrets", "", false, "cert-controller's namespaced cache (pkg/cert/cert.go)", "list", "watch")
	add("", "secrets", "training-operator-webhook-cert", false, "cert-controller writeSecret", "get", "update")
	add("admissionregistration.k8s.io", "validatingwebhookconfigurations", "", true, "cert-controller's informer", "list", "watch")
	add("admissionregistration.k8s.io", "validatingwebhookconfigurations", "validator.training-operator.kubeflow.org", true, "cert-controller ensureCerts", "get", "update")
	return needs
}()

func ruleAllows(rule map[string]any, n rbacNeed) bool {
	has := func(key, v string) bool {
		list := asSlice(rule[key])
		return slices.Contains(list, any(v)) || slices.Contains(list, any("*"))
	}
	if !has("apiGroups", n.group) || !has("resources", n.resource) || !has("verbs", n.verb) {
		return false
	}
	names := asSlice(rule["resourceNames"])
	return len(names) == 0 || (n.name != "" && slices.Contains(names, any(n.name)))
}

func TestTrainingOperatorRBAC(t *testing.T) {
	objs := render(t, trainop, nil)
	var namespaced, cluster []map[string]any
	for _, o := range objs {
		for _, r := range asSlice(o.Object["rules"]) {
			switch o.GetKind() {
			case "Role":
				namespaced = append(namespaced, r.(map[string]any))
			case "ClusterRole":
				cluster = append(cluster, r.(map[string]any))
			}
		}
	}
	// Both are bound to the operator's ServiceAccount.
	for _, b := range []struct{ kind, name, role string }{
		{"RoleBinding", "training-operator", "training-operator"},
		{"ClusterRoleBinding", "kubeflow-training-operator", "kubeflow-training-operator"},
	} {
		o := trainopObject(t, objs, b.kind, b.name)
		subjects := asSlice(o.Object["subjects"])
		ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
		if ref != b.role || len(subjects) != 1 || subjects[0].(map[string]any)["name"] != "training-operator" {
			t.Errorf("%s %s binds %s to %v, want the training-operator ServiceAccount", b.kind, b.name, ref, subjects)
		}
	}
	for _, n := range trainopCalls {
		rules := namespaced
		if n.cluster {
			rules = cluster
		}
		found := false
		for _, r := range rules {
			found = found || ruleAllows(r, n)
		}
		if !found {
			t.Errorf("no rule allows %s %s.%s %s (%s)", n.verb, n.resource, n.group, n.name, n.source)
		}
	}
	// Least privilege: every granted verb is one of the calls above (names included).
	for _, set := range []struct {
		rules   []map[string]any
		cluster bool
	}{{namespaced, false}, {cluster, true}} {
		for _, r := range set.rules {
			for _, g := range asSlice(r["apiGroups"]) {
				for _, res := range asSlice(r["resources"]) {
					for _, v := range asSlice(r["verbs"]) {
						names := asSlice(r["resourceNames"])
						ok := slices.ContainsFunc(trainopCalls, func(n rbacNeed) bool {
							return n.cluster == set.cluster && n.group == g && n.resource == res && n.verb == v &&
								(n.name == "" || (len(names) == 1 && names[0] == n.name))
						})
						if !ok {
							t.Errorf("rule %v grants %s %s.%s (names %v), which the operator never calls", r, v, res, g, names)
						}
					}
				}
			}
		}
	}
}

// celViolations evaluates every x-kubernetes-validations rule of schema s at each node of v the
// way the API server does (self is the node's value; rules with oldSelf are transition rules,
// not evaluated on create). It returns "path: message" per failed rule, and fails the test on a
// rule that standard CEL cannot compile or evaluate.
func celViolations(t *testing.T, env *cel.Env, s map[string]any, v any, path string) []string {
	t.Helper()
	var out []string
	for _, r := range asSlice(s["x-kubernetes-validations"]) {
		r := r.(map[string]any)
		rule, _ := r["rule"].(string)
		if strings.Contains(rule, "oldSelf") {
			continue
		}
		ast, iss := env.Compile(rule)
		if iss.Err() != nil {
			t.Fatalf("%s: rule %q does not compile: %v", path, rule, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatalf("%s: rule %q: %v", path, rule, err)
		}
		res, _, err := prg.Eval(map[string]any{"self": celValue(v)})
		if err != nil {
			t.Fatalf("%s: rule %q on %v: %v", path, rule, v, err)
		}
		if res.Value() != true {
			out = append(out, fmt.Sprintf("%s: %v", path, r["message"]))
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props := asMap(s["properties"])
		for k, e := range val {
			if p, ok := props[k]; ok {
				out = append(out, celViolations(t, env, p.(map[string]any), e, joinKey(path, k))...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				out = append(out, celViolations(t, env, ap, e, joinKey(path, k))...)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range val {
				out = append(out, celViolations(t, env, items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return out
}

// celValue gives whole numbers CEL's int type, as the API server does for integer fields.
func celValue(v any) any {
	switch val := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(val))
		for k, e := range val {
			out[k] = celValue(e)
		}
		return out
	case []any:
		out := make([]any, len(val))
		for i, e := range val {
			out[i] = celValue(e)
		}
		return out
	case float64:
		if val == math.Trunc(val) {
			return int64(val)
		}
	}
	return v
}

// trainopSchemas: kind → the v1 schema of the component's CRDs.
func trainopSchemas(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range render(t, trainop, nil) {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			if v.(map[string]any)["name"] == "v1" {
				out[kind], _, _ = unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema")
			}
		}
	}
	return out
}

// admit checks a job against the schema and its CEL rules; it returns every violation.
func admit(t *testing.T, schemas map[string]map[string]any, obj map[string]any) []string {
	t.Helper()
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := schemas[obj["kind"].(string)]
	if !ok {
		t.Fatalf("no CRD for %v", obj["kind"])
	}
	return append(validate(s, obj, ""), celViolations(t, env, s, obj, "")...)
}

func container(name string) map[string]any {
	return map[string]any{"name": name, "image": "docker.io/library/busybox:1.37"}
}

func replica(replicas int, containers ...map[string]any) map[string]any {
	cs := make([]any, len(containers))
	for i, c := range containers {
		cs[i] = c
	}
	return map[string]any{"replicas": float64(replicas), "template": map[string]any{"spec": map[string]any{"containers": cs}}}
}

func job(kind string, replicas map[string]any) map[string]any {
	field := map[string]string{"TFJob": "tfReplicaSpecs", "PyTorchJob": "pytorchReplicaSpecs"}[kind]
	return map[string]any{
		"apiVersion": "kubeflow.org/v1", "kind": kind,
		"metadata": map[string]any{"name": "j", "namespace": "kubeflow"},
		"spec":     map[string]any{field: replicas},
	}
}

func TestTrainingOperatorCRDsAcceptWhatItRuns(t *testing.T) {
	schemas := trainopSchemas(t)
	tf, pt := container("tensorflow"), container("pytorch")
	for name, obj := range map[string]map[string]any{
		// tensorflow_types.go@v1.9.4: Chief and Master are the same role; Evaluator, PS, Worker.
		"TFJob Master + Worker":                 job("TFJob", map[string]any{"Master": replica(1, tf), "Worker": replica(2, tf)}),
		"TFJob Chief + PS + Worker + Evaluator": job("TFJob", map[string]any{"Chief": replica(1, tf), "PS": replica(1, tf), "Worker": replica(2, tf), "Evaluator": replica(1, tf)}),
		// defaulting_utils.go@v1.9.4 setTypeNameToCamelCase: keys equal ignoring case are normalised.
		"TFJob lower-case types":           job("TFJob", map[string]any{"ps": replica(1, tf), "worker": replica(2, tf), "master": replica(1, tf)}),
		"TFJob upper-case types":           job("TFJob", map[string]any{"PS": replica(1, tf), "WORKER": replica(2, tf)}),
		"TFJob sidecar next to tensorflow": job("TFJob", map[string]any{"Worker": replica(1, container("sidecar"), tf)}),
		"TFJob zero workers":               job("TFJob", map[string]any{"Worker": replica(0, tf)}),
		"PyTorchJob Master + Worker":       job("PyTorchJob", map[string]any{"Master": replica(1, pt), "Worker": replica(3, pt)}),
		"PyTorchJob Worker only":           job("PyTorchJob", map[string]any{"Worker": replica(2, pt)}),
	} {
		if errs := admit(t, schemas, obj); len(errs) > 0 {
			t.Errorf("%s: rejected: %v", name, errs)
		}
	}
	elastic := job("PyTorchJob", map[string]any{"Worker": replica(2, pt)})
	elastic["spec"].(map[string]any)["elasticPolicy"] = map[string]any{"minReplicas": float64(1), "maxReplicas": float64(4), "rdzvBackend": "c10d"}
	if errs := admit(t, schemas, elastic); len(errs) > 0 {
		t.Errorf("elastic PyTorchJob: rejected: %v", errs)
	}
}

func TestTrainingOperatorCRDsRejectWhatItRefuses(t *testing.T) {
	schemas := trainopSchemas(t)
	tf, pt := container("tensorflow"), container("pytorch")
	elasticNoWorker := job("PyTorchJob", map[string]any{"Master": replica(1, pt)})
	elasticNoWorker["spec"].(map[string]any)["elasticPolicy"] = map[string]any{"maxReplicas": float64(2)}
	for _, c := range []struct {
		name string
		obj  map[string]any
		// The violation must be reported at this path, with a message containing this text.
		path, message string
	}{
		// pkg/webhooks/tensorflow/tfjob_webhook.go@v1.9.4: at least one container named tensorflow.
		{"TFJob without a tensorflow container", job("TFJob", map[string]any{"Worker": replica(1, container("main"))}),
			"spec.tfReplicaSpecs.Worker.template.spec.containers", "container named tensorflow"},
		{"TFJob with an unknown type", job("TFJob", map[string]any{"Trainer": replica(1, tf)}),
			"spec.tfReplicaSpecs", "replica types must be Chief, Master, PS, Worker or Evaluator"},
		// tfjob_webhook.go@v1.9.4: "must not have more than 1 Chief or Master role".
		{"TFJob with Chief and Master", job("TFJob", map[string]any{"Chief": replica(1, tf), "Master": replica(1, tf)}),
			"spec.tfReplicaSpecs", "at most one of Chief and Master"},
		// setTypeNameToCamelCase keeps only one of two keys naming the same type.
		{"TFJob with Worker and worker", job("TFJob", map[string]any{"Worker": replica(1, tf), "worker": replica(1, tf)}),
			"spec.tfReplicaSpecs", "replica type Worker is given more than once"},
		// pkg/webhooks/pytorch/pytorchjob_webhook.go@v1.9.4: exactly Master and Worker, no defaulting first.
		{"PyTorchJob with lower-case master", job("PyTorchJob", map[string]any{"master": replica(1, pt)}),
			"spec.pytorchReplicaSpecs", "replica types must be Master or Worker"},
		{"PyTorchJob without a pytorch container", job("PyTorchJob", map[string]any{"Worker": replica(1, tf)}),
			"spec.pytorchReplicaSpecs.Worker.template.spec.containers", "container named pytorch"},
		{"PyTorchJob with two masters", job("PyTorchJob", map[string]any{"Master": replica(2, pt)}),
			"spec.pytorchReplicaSpecs", "Master must set replicas: 1"},
		{"PyTorchJob elastic without workers", elasticNoWorker, "spec", "elasticPolicy needs a Worker"},
	} {
		errs := admit(t, schemas, c.obj)
		found := slices.ContainsFunc(errs, func(e string) bool {
			return strings.HasPrefix(e, c.path+": ") && strings.Contains(e, c.message)
		})
		if !found {
			t.Errorf("%s: not rejected at %s with %q; violations: %v", c.name, c.path, c.message, errs)
		}
	}
}

// TestTrainingOperatorSamples: the tfjob-* and pytorchjob-* samples (applied by the end-to-end
// and conformance tests) pass or fail the schemas and CEL rules as their names say.
func TestTrainingOperatorSamples(t *testing.T) {
	schemas := trainopSchemas(t)
	var files []string
	for _, glob := range []string{"tfjob-*.yaml", "pytorchjob-*.yaml"} {
		m, err := filepath.Glob(filepath.Join("testdata", "samples", glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("only %d training job samples", len(files))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Decode(file, data)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^# rejected-at: (\S+)`).FindSubmatch(data)
		for _, o := range objs {
			errs := admit(t, schemas, o.Object)
			switch {
			case strings.HasSuffix(file, "-valid.yaml") && len(errs) > 0:
				t.Errorf("%s: %s rejected: %v", file, o.GetName(), errs)
			case strings.HasSuffix(file, "-invalid.yaml"):
				if m == nil {
					t.Fatalf("%s: an invalid sample needs a \"# rejected-at: <path>\" comment", file)
				}
				// The API server writes map keys as [key] (field.Path.Key); validate joins them with dots.
				at := regexp.MustCompile(`\[([^\]]+)\]`).ReplaceAllString(string(m[1]), ".$1")
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, at+":") }) {
					t.Errorf("%s: %s not rejected at %s; violations: %v", file, o.GetName(), m[1], errs)
				}
			}
		}
	}
}

func TestPyTorchJobScale(t *testing.T) {
	// pkg/apis/kubeflow.org/v1/pytorch_types.go@v1.9.4: +kubebuilder:subresource:scale.
	crd := trainopObject(t, render(t, trainop, nil), "CustomResourceDefinition", "pytorchjobs.kubeflow.org")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	scale, _, _ := unstructured.NestedStringMap(versions[0].(map[string]any), "subresources", "scale")
	want := map[string]string{
		"specReplicasPath":   ".spec.pytorchReplicaSpecs.Worker.replicas",
		"statusReplicasPath": ".status.replicaStatuses.Worker.active",
		"labelSelectorPath":  ".status.replicaStatuses.Worker.selector",
	}
	for k, v := range want {
		if scale[k] != v {
			t.Errorf("scale.%s = %q, want %q", k, scale[k], v)
		}
	}
}
