//go:build conformance

package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/harness/mariadb"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

var experimentsGVR = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1beta1", Resource: "experiments"}

// deleteExperiments deletes the Experiments of ns and waits, for up to a minute, until they and
// their Trials are gone, while Katib's controller still runs to remove their finalizers
// (update-prometheus-metrics, clean-metrics-in-db): a Trial left with its finalizer holds its
// namespace and the Trial CRD forever, and with them the deletion of every later app that
// includes Katib. Trials still there after the minute are named, and their finalizers removed.
func deleteExperiments(t *testing.T, e *env, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.Dyn.Resource(experimentsGVR).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		for _, gvr := range []schema.GroupVersionResource{experimentsGVR, trialsGVR} {
			if l, err := e.Dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
	l, err := e.Dyn.Resource(trialsGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, tr := range l.Items {
		t.Logf("trial %s still has finalizers %v a minute after its Experiment was deleted; removing them", tr.GetName(), tr.GetFinalizers())
		_, _ = e.Dyn.Resource(trialsGVR).Namespace(ns).Patch(context.Background(), tr.GetName(), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	}
}

// goptunaImage is the image katib-config names for the goptuna service (cmaes, sobol at
// katib-standalone/katib-config.yaml@v0.19.0); the test offers it for random too, which goptuna
// serves (pkg/suggestion/v1beta1/goptuna/service.go@v0.19.0), so that random search runs on a Go
// service the harness can build.
const goptunaImage = "ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0"

// TestKatib runs an app of core, tf-job-operator and katib with Katib's real controller (webhooks
// served to the API server through the katib-controller Service, failurePolicy Fail), its
// db-manager over a real MariaDB, its UI backend, the goptuna suggestion service for each
// Experiment and the real training operator. Random searches with 3 trials, 2 in parallel, of
// Jobs and of TFJobs must reach Succeeded; an Experiment that only Katib's validator can refuse
// must be refused by it.
func TestKatib(t *testing.T) {
	controllerBin, dbManagerBin := binary(t, "katib-controller"), binary(t, "katib-db-manager")
	goptunaBin, uiBin, reporterBin := binary(t, "katib-suggestion-goptuna"), binary(t, "katib-ui"), binary(t, "katib-report-metrics")
	operatorBin := binary(t, "training-operator")
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// With the training operator: trials run as Jobs and as TFJobs.
	dir, ns := e.NewApp(t, "katib", "--components", "core,tf-job-operator,katib")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() {
		// Experiments first, while the controller runs to remove their finalizers (otherwise
		// they, and the CRDs after them, never go); then Katib, before its RBAC goes, so that it
		// logs no refused request; then the app.
		deleteExperiments(t, e, ns)
		for _, p := range e.h.Processes() {
			p.Stop(5 * time.Second)
		}
		e.Run(t, dir, "delete", "--purge", "--yes")
	})
	e.MustRun(t, dir, "param", "set", "katib", "storageClass", `""`)
	e.MustRun(t, dir, "param", "set", "katib", "suggestions", `{"random": "`+goptunaImage+`"}`)
	e.MustRun(t, dir, "generate")
	for _, c := range e2eutil.AppClaims(t, e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests")), ns) {
		e.CreateReservedPV(t, c)
	}
	e.MustRun(t, dir, "apply")
	if err := e.h.ScaleDown(ctx); err != nil {
		t.Fatal(err)
	}

	// MySQL: a real MariaDB behind the katib-mysql Service, with the database and user that
	// the MySQL image would create from the app's generated secret.
	db := startMariaDB(ctx, t, e, ns)
	if err := e.h.Forward(ctx, ns, "katib-mysql", 3306, db.Addr()); err != nil {
		t.Fatal(err)
	}

	// db-manager: upstream listens on 0.0.0.0:6789 (--listen-address); moved to a free
	// loopback port, which the katib-db-manager Service forwards to.
	dbPort := freePortString(t)
	dbm, err := e.h.Start(ctx, harness.Program{
		Binary: dbManagerBin, Namespace: ns, Deployment: "katib-db-manager",
		Args:  func(a []string) []string { return harness.SetFlag(a, "--listen-address", "127.0.0.1:"+dbPort) },
		Ports: map[int32]int32{6789: port32(t, dbPort)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbm.WaitLog(ctx, regexp.MustCompile(`Start Katib manager`)); err != nil {
		t.Fatal(err)
	}

	startTrainingOperator(ctx, t, e, operatorBin, ns)
	controller := startKatibController(ctx, t, e, ns, controllerBin)
	stopSuggestions := runSuggestionServices(ctx, t, e, ns, goptunaBin)
	defer stopSuggestions()

	dbManagerSvc, err := e.Kube.CoreV1().Services(ns).Get(ctx, "katib-db-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reporter := startTrialReporter(ctx, t, e.Dyn, ns, reporterBin, net.JoinHostPort(dbManagerSvc.Spec.ClusterIP, "6789"), "accuracy")

	t.Run("invalid experiment refused by Katib's validator", func(t *testing.T) {
		exp := experiment(ns, "too-parallel", 3, 5)
		_, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).Create(ctx, exp, metav1.CreateOptions{})
		// The CRD schema cannot compare two fields; Katib's validator does
		// (pkg/webhook/v1beta1/experiment/validator/validator.go@v0.19.0).
		if err == nil || !strings.Contains(err.Error(), "validator.experiment.katib.kubeflow.org") || !strings.Contains(err.Error(), "should be less than or equal to spec.maxTrialCount") {
			t.Errorf("Experiment with parallelTrialCount 5 > maxTrialCount 3: got %v, want a refusal by Katib's validating webhook", err)
		}
	})

	t.Run("random search, 3 trials, 2 in parallel", func(t *testing.T) {
		randomSearch(ctx, t, e, ns, reporter, "random-search", jobTrial)
	})
	t.Run("random search with TFJob trials", func(t *testing.T) {
		randomSearch(ctx, t, e, ns, reporter, "random-search-tfjob", tfJobTrial)
	})

	t.Run("UI lists the trial templates", func(t *testing.T) { checkUI(ctx, t, e, ns, uiBin) })
	t.Run("controller made no request on Secrets", func(t *testing.T) { checkNoSecretRequests(ctx, t, e, ns, controller) })
}

// checkNoSecretRequests: the controller, after serving the Experiments above, made no request
// on Secrets. The API server's request counts carry no user, so this holds in two parts: its
// ServiceAccount may not get, list or watch Secrets, in the app's namespace or cluster-wide
// (asked of the API server, which authorises every request the controller sends), so any such
// request was refused; and a refused request is logged by client-go's reflector or returned
// to Katib's code, which logs it, and the log names none.
func checkNoSecretRequests(ctx context.Context, t *testing.T, e *env, ns string, controller *harness.Process) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":katib-controller"
	for _, scope := range []string{ns, ""} {
		for _, verb := range []string{"get", "list", "watch"} {
			review, err := e.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: scope, Verb: verb, Resource: "secrets"},
			}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("ask whether %s may %s Secrets: %v", user, verb, err)
			}
			if review.Status.Allowed {
				where := "in namespace " + ns
				if scope == "" {
					where = "cluster-wide"
				}
				t.Errorf("%s may %s Secrets %s (%s): Katib's certificate generator is off, and nothing else in the controller needs them", user, verb, where, review.Status.Reason)
			}
		}
	}
	for _, l := range controller.Lines() {
		if low := strings.ToLower(l); strings.Contains(low, "secret") && (strings.Contains(low, "forbidden") || strings.Contains(low, "failed")) {
			t.Errorf("katib-controller asked for Secrets: %s", l)
		}
	}
}

// randomSearch runs a random-search Experiment of 3 trials, 2 in parallel, of the given kind to
// Succeeded and checks Katib's result against the metrics reported for its trials.
func randomSearch(ctx context.Context, t *testing.T, e *env, ns string, reporter *trialReporter, name string, kind trialKind) {
	t.Helper()
	exp := experimentOf(ns, name, 3, 2, kind)
	if _, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).Create(ctx, exp, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Experiment: %v", err)
	}
	var final *unstructured.Unstructured
	e2eutil.Eventually(t, 3*time.Minute, "Experiment "+name+" Succeeded", func(ctx context.Context) (bool, error) {
		o, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		final = o
		if conditionIs(o, "Failed") {
			return false, fmt.Errorf("Experiment failed: %v", o.Object["status"])
		}
		return conditionIs(o, "Succeeded"), nil
	})
	status := asMap(final.Object["status"])
	if n, _ := status["trialsSucceeded"].(int64); n != 3 {
		t.Errorf("trialsSucceeded %v, want 3 (status %v)", status["trialsSucceeded"], status)
	}
	all, errs := reporter.results()
	for _, err := range errs {
		t.Error(err)
	}
	// The reporter serves every Experiment of the namespace: keep this one's trials.
	trials, err := e.Dyn.Resource(trialsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "katib.kubeflow.org/experiment=" + name})
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]string{}
	for _, tr := range trials.Items {
		if v, ok := all[tr.GetName()]; ok {
			reported[tr.GetName()] = v
		}
	}
	best := asMap(status["currentOptimalTrial"])
	bestName, _ := best["bestTrialName"].(string)
	var bestValue float64
	for _, v := range reported {
		f, _ := strconv.ParseFloat(v, 64)
		bestValue = max(bestValue, f)
	}
	if got, ok := reported[bestName]; !ok || got != strconv.FormatFloat(bestValue, 'f', 6, 64) {
		t.Errorf("best trial %q (reported %q), want the trial with the highest reported accuracy %v of %v", bestName, got, bestValue, reported)
	}
	checkCollectorInjected(ctx, t, e, ns, kind, reported)
}

// experiment is random search over lr (a Job per trial) with the given trial counts.
func experiment(ns, name string, maxTrials, parallel int64) *unstructured.Unstructured {
	return experimentOf(ns, name, maxTrials, parallel, jobTrial)
}

// A trial kind: the trial template's primary container and its run spec.
type trialKind struct {
	container string
	spec      func(container map[string]any) map[string]any
	// podSelector finds a trial's primary pods (those Katib injects its metrics collector into)
	// by the trial (= job) name.
	podSelector func(trial string) string
	// conditions Katib reads on the job ("" for Katib's defaults).
	successCondition, failureCondition string
}

// jobTrial runs each trial as a batch Job.
var jobTrial = trialKind{
	container: "training",
	spec: func(c map[string]any) map[string]any {
		return map[string]any{
			"apiVersion": "batch/v1",
			"kind":       "Job",
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"restartPolicy": "Never",
				"containers":    []any{c},
			}}},
		}
	},
	podSelector: func(trial string) string { return "batch.kubernetes.io/job-name=" + trial },
}

// tfJobTrial runs each trial as a TFJob of two workers (the training operator's pods).
var tfJobTrial = trialKind{
	container: "tensorflow",
	spec: func(c map[string]any) map[string]any {
		return map[string]any{
			"apiVersion": "kubeflow.org/v1",
			"kind":       "TFJob",
			"spec": map[string]any{"tfReplicaSpecs": map[string]any{"Worker": map[string]any{
				"replicas":      int64(2),
				"restartPolicy": "OnFailure",
				"template":      map[string]any{"spec": map[string]any{"containers": []any{c}}},
			}}},
		}
	},
	// Katib's primary pod of a TFJob is the one the operator labels job-role master (worker 0
	// when there is no chief): DefaultKubeflowJobPrimaryPodLabels in
	// pkg/apis/controller/experiments/v1beta1/constants.go@v0.19.0.
	podSelector: func(trial string) string {
		return "training.kubeflow.org/job-name=" + trial + ",training.kubeflow.org/job-role=master"
	},
	// As in Katib's TFJob examples (examples/v1beta1/kubeflow-training-operator@v0.19.0).
	successCondition: `status.conditions.#(type=="Succeeded")#|#(status=="True")#`,
	failureCondition: `status.conditions.#(type=="Failed")#|#(status=="True")#`,
}

// experimentOf is random search over lr with trials of the given kind.
func experimentOf(ns, name string, maxTrials, parallel int64, kind trialKind) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubeflow.org/v1beta1",
		"kind":       "Experiment",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"objective":          map[string]any{"type": "maximize", "objectiveMetricName": "accuracy"},
			"algorithm":          map[string]any{"algorithmName": "random"},
			"maxTrialCount":      maxTrials,
			"parallelTrialCount": parallel,
			"parameters": []any{map[string]any{
				"name": "lr", "parameterType": "double",
				"feasibleSpace": map[string]any{"min": "0.01", "max": "0.05"},
			}},
			"trialTemplate": map[string]any{
				"primaryContainerName": kind.container,
				// Keep the trials' jobs (and so their pods) to inspect the injected collector.
				"retain":           true,
				"trialParameters":  []any{map[string]any{"name": "learningRate", "reference": "lr"}},
				"successCondition": kind.successCondition,
				"failureCondition": kind.failureCondition,
				"trialSpec": kind.spec(map[string]any{
					"name":    kind.container,
					"image":   "ghcr.io/kubeflow/katib/pytorch-mnist-cpu:v0.19.0",
					"command": []any{"python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1", "--lr=${trialParameters.learningRate}"},
				}),
			},
		},
	}}
}

// startMariaDB starts MariaDB with the katib database and user, password from the app's
// katib-mysql-secrets Secret (never logged).
func startMariaDB(ctx context.Context, t *testing.T, e *env, ns string) *mariadb.Server {
	t.Helper()
	start := time.Now()
	s, err := fetchMariaDB(ctx, t).Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	secret, err := e.Kube.CoreV1().Secrets(ns).Get(ctx, "katib-mysql-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(ctx, string(secret.Data["database"]), string(secret.Data["user"]), string(secret.Data["password"])); err != nil {
		t.Fatal(err)
	}
	t.Logf("MariaDB on %s with database %s ready in %s", s.Addr(), secret.Data["database"], time.Since(start).Round(100*time.Millisecond))
	return s
}

// startKatibController runs the controller with the rendered katib-config, except its
// listening addresses: metrics and health on free loopback ports and the webhook server on a
// free port (forwarded from the katib-controller Service's 443), so that it shares the host
// with other programs. Katib's certificate generator is off: the harness lays out the
// katib-webhook-cert Secret, which kfdeploy's apply filled with its certificate, in /tmp/cert
// before the controller starts, as the kubelet would project it, and the test keeps it current.
func startKatibController(ctx context.Context, t *testing.T, e *env, ns, bin string) *harness.Process {
	t.Helper()
	cm, err := e.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "katib-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["katib-config.yaml"]), &cfg); err != nil {
		t.Fatalf("katib-config.yaml: %v", err)
	}
	webhookPort := freePortString(t)
	controller := asMap(asMap(cfg["init"])["controller"])
	controller["webhookPort"] = port32(t, webhookPort)
	controller["metricsAddr"] = "127.0.0.1:" + freePortString(t)
	controller["healthzAddr"] = "127.0.0.1:" + freePortString(t)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var writeErr error
	p, err := e.h.Start(ctx, harness.Program{
		Binary: bin, Namespace: ns, Deployment: "katib-controller",
		// The rendered flag names the materialised ConfigMap volume, inside the process's
		// directory (the only part of /tmp the process sees); the copy goes next to it.
		Args: func(a []string) []string {
			config := filepath.Join(filepath.Dir(flagValue(a, "--katib-config")), "katib-config-harness.yaml")
			writeErr = os.WriteFile(config, data, 0o644)
			return harness.SetFlag(a, "--katib-config", config)
		},
		Ports: map[int32]int32{8443: port32(t, webhookPort)},
	})
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	syncSecretVolume(ctx, t, e, ns, "katib-webhook-cert", filepath.Join(p.Dir, "volumes", "cert"))
	// Ready: certificates taken as they are (the generator is off), then the controllers and
	// webhooks registered (cmd/katib-controller/v1beta1/main.go@v0.19.0).
	for _, re := range []string{`Certs ready`, `Starting workers.*experiment-controller`} {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := p.WaitLog(wctx, regexp.MustCompile(re))
		cancel()
		if err != nil {
			t.Fatalf("katib-controller: %v", err)
		}
	}
	return p
}

// runSuggestionServices starts the goptuna suggestion service for every suggestion Deployment
// the controller creates (<experiment>-<algorithm>, labelled katib.kubeflow.org/suggestion), in
// its place: the harness scales the Deployment to 0 (Katib only checks that it is Available)
// and forwards the suggestion Service, which the controller dials by DNS name, to the process.
func runSuggestionServices(ctx context.Context, t *testing.T, e *env, ns, bin string) (stop func()) {
	t.Helper()
	var mu sync.Mutex
	started := map[string]bool{}
	factory := informers.NewSharedInformerFactoryWithOptions(e.Kube, 0, informers.WithNamespace(ns))
	if _, err := factory.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			d, ok := obj.(*appsv1.Deployment)
			// The suggestion labels are on the pod template (pkg/controller.v1beta1/util/labels.go).
			if !ok || d.Spec.Template.Labels["katib.kubeflow.org/suggestion"] == "" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if started[d.Name] {
				return
			}
			started[d.Name] = true
			port := freePortString(t)
			if _, err := e.h.Start(ctx, harness.Program{
				Binary: bin, Namespace: ns, Deployment: d.Name, Container: "suggestion",
				ExtraArgs: []string{"-listen=127.0.0.1:" + port},
				Ports:     map[int32]int32{6789: port32(t, port)},
			}); err != nil {
				t.Errorf("suggestion service for %s: %v", d.Name, err)
				return
			}
			t.Logf("goptuna suggestion service for Deployment %s on 127.0.0.1:%s", d.Name, port)
		},
	}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	factory.Start(sctx.Done())
	return cancel
}

// checkCollectorInjected: Katib's pod webhook added its metrics collector to each trial's
// pod, which carries no Katib label at creation (the webhook's matchConditions select it by
// its owner, the trial's Job).
func checkCollectorInjected(ctx context.Context, t *testing.T, e *env, ns string, kind trialKind, trials map[string]string) {
	t.Helper()
	for trial := range trials {
		pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kind.podSelector(trial)})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			t.Errorf("trial %s: no primary pod of its job left to inspect (%s)", trial, kind.podSelector(trial))
		}
		for _, p := range pods.Items {
			var names []string
			injected := false
			for _, c := range p.Spec.Containers {
				names = append(names, c.Name)
				injected = injected || strings.HasPrefix(c.Name, "metrics-")
			}
			if !injected || p.Labels["katib.kubeflow.org/trial"] != trial {
				t.Errorf("trial %s pod %s: containers %v, label katib.kubeflow.org/trial=%q: want Katib's metrics collector injected and the trial label set by its webhook", trial, p.Name, names, p.Labels["katib.kubeflow.org/trial"])
			}
		}
	}
}

// checkUI runs the UI's backend and asks it, through the katib-ui Service, for what its
// create-experiment page shows.
func checkUI(ctx context.Context, t *testing.T, e *env, ns, bin string) {
	port := freePortString(t)
	ui, err := e.h.Start(ctx, harness.Program{
		Binary: bin, Namespace: ns, Deployment: "katib-ui",
		Args:      func(a []string) []string { return harness.SetFlag(a, "--port", port) },
		ExtraArgs: []string{"--host=127.0.0.1"},
		Ports:     map[int32]int32{8080: port32(t, port)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ui.WaitLog(ctx, regexp.MustCompile(`Serving at`)); err != nil {
		t.Fatal(err)
	}
	svc, err := e.Kube.CoreV1().Services(ns).Get(ctx, "katib-ui", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) []byte {
		url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + path
		var body []byte
		e2eutil.Eventually(t, 30*time.Second, "GET "+url, func(ctx context.Context) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, nil // the forwarder may not be listening yet
			}
			defer resp.Body.Close()
			body, err = io.ReadAll(resp.Body)
			if err != nil {
				return false, err
			}
			if resp.StatusCode != http.StatusOK {
				return false, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
			}
			return true, nil
		})
		return body
	}
	var namespaces []string
	if err := json.Unmarshal(get("/katib/fetch_namespaces"), &namespaces); err != nil {
		t.Fatalf("fetch_namespaces: %v", err)
	}
	if len(namespaces) != 1 || namespaces[0] != ns {
		t.Errorf("the UI offers namespaces %v, want only its own, %s", namespaces, ns)
	}
	var templates struct {
		Data []struct {
			ConfigMapNamespace string
			ConfigMaps         []struct {
				ConfigMapName string
				Templates     []struct{ Path, Yaml string }
			}
		}
	}
	body := get("/katib/fetch_trial_templates/")
	if err := json.Unmarshal(body, &templates); err != nil {
		t.Fatalf("fetch_trial_templates: %v: %s", err, body)
	}
	var paths []string
	for _, v := range templates.Data {
		for _, cm := range v.ConfigMaps {
			for _, tmpl := range cm.Templates {
				paths = append(paths, v.ConfigMapNamespace+"/"+cm.ConfigMapName+"/"+tmpl.Path)
			}
		}
	}
	want := ns + "/trial-templates/defaultTrialTemplate.yaml"
	if !strings.Contains(strings.Join(paths, " "), want) {
		t.Errorf("the UI lists trial templates %v, want %s among them", paths, want)
	}
}

// flagValue returns the value of --flag=value (or --flag value) in args.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func conditionIs(o *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m := asMap(c)
		if m["type"] == condType && m["status"] == "True" {
			return true
		}
	}
	return false
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// freePortString is freePort as the text a flag or config value takes.
func freePortString(t *testing.T) string { return strconv.Itoa(int(freePort(t))) }

func port32(t *testing.T, port string) int32 {
	t.Helper()
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}
