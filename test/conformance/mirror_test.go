//go:build conformance

package conformance

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// mirror is the registry of the tests below; nothing pulls from it (kwok runs no container).
const mirror = "registry.local:5000/kf"

// pullSecret is the mirror's login: a Secret that kfdeploy makes from the docker config file
// mirror-auth.json of the app directory (spec.images.pullSecrets).
const pullSecret = "mirror-login"

// useMirror sets spec.images.registry and spec.images.pullSecrets in the app's app.yaml (spec
// is its last section), with a docker config file for the pull secret.
func useMirror(t *testing.T, appDir string) {
	t.Helper()
	path := filepath.Join(appDir, "app.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("  images:\n    registry: "+mirror+"\n    pullSecrets:\n      - name: "+pullSecret+"\n        file: mirror-auth.json\n")...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("conformance:not-a-real-password"))
	if err := os.WriteFile(filepath.Join(appDir, "mirror-auth.json"), []byte(`{"auths":{"registry.local:5000":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkPullSecret fails the test unless every pod of ns matching selector (at least one) names
// the mirror's pull secret; it returns the pods' names.
func checkPullSecret(ctx context.Context, t *testing.T, e *env, ns, selector, what string) []string {
	t.Helper()
	pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) == 0 {
		t.Fatalf("no %s pods (%s)", what, selector)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
		if !slices.ContainsFunc(p.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == pullSecret }) {
			t.Errorf("%s pod %s: imagePullSecrets %v, want %s", what, p.Name, p.Spec.ImagePullSecrets, pullSecret)
		}
	}
	return names
}

// checkPullSecretObject fails the test unless the app applied the pull Secret, of the type
// the kubelet reads, with the docker config file's contents.
func checkPullSecretObject(ctx context.Context, t *testing.T, e *env, appDir, ns string) {
	t.Helper()
	s, err := e.Kube.CoreV1().Secrets(ns).Get(ctx, pullSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pull secret: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(appDir, "mirror-auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson || string(s.Data[corev1.DockerConfigJsonKey]) != string(want) {
		t.Errorf("Secret %s/%s of type %s does not hold the docker config file", ns, pullSecret, s.Type)
	}
}

// podImages lists "field/container=image" of every pod of ns matching selector.
func podImages(ctx context.Context, t *testing.T, e *env, ns, selector string) []string {
	t.Helper()
	pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	add := func(field string, cs []corev1.Container) {
		for _, c := range cs {
			out = append(out, field+"/"+c.Name+"="+c.Image)
		}
	}
	for _, p := range pods.Items {
		add("initContainers", p.Spec.InitContainers)
		add("containers", p.Spec.Containers)
	}
	return out
}

// TestMirroredExecutorImage: with spec.images.registry, the real workflow-controller v3.7.18
// puts the mirrored argoexec into the init and wait containers of the workflow pods it creates:
// the rewrite reached the image it reads from its flags, not only the pod specs kfdeploy applies.
// With spec.images.pullSecrets, the pods of a workflow that names no pull secret carry the
// app's (workflow defaults), and the app applied the Secret made from the docker config file.
func TestMirroredExecutorImage(t *testing.T) {
	controller := binary(t, "workflow-controller")
	argoexec := binary(t, "argoexec")
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir, ns := e.NewApp(t, "mirror-argo", "--components", "argo")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() { e.Run(t, dir, "delete", "--yes", "--purge") })
	useMirror(t, dir)
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.MustRun(t, dir, "generate")
	e.MustRun(t, dir, "apply")
	startArgo(ctx, t, e, controller, argoexec, ns)

	wf := sample(t, "workflow-dag-outputs-valid.yaml", "Workflow")
	wf.SetNamespace(ns)
	done := runWorkflow(ctx, t, e, wf)
	images := podImages(ctx, t, e, ns, "workflows.argoproj.io/workflow="+done.GetName())
	want := mirror + "/argoproj/argoexec:v3.7.18"
	injected := 0
	for _, img := range images {
		if strings.HasPrefix(img, "initContainers/init=") || strings.HasPrefix(img, "containers/wait=") {
			injected++
			if !strings.HasSuffix(img, "="+want) {
				t.Errorf("workflow pod container %s, want image %s", img, want)
			}
		}
	}
	if injected == 0 {
		t.Fatalf("no init or wait container in the workflow's pods: %v", images)
	}
	t.Logf("workflow pods: %v", images)
	// The sample names no pull secret: the controller's workflow defaults give it to each pod.
	checkPullSecretObject(ctx, t, e, dir, ns)
	pods := checkPullSecret(ctx, t, e, ns, "workflows.argoproj.io/workflow="+done.GetName(), "workflow")
	t.Logf("workflow pods with pull secret %s: %v", pullSecret, pods)
}

// TestMirroredPyTorchInitImage: with spec.images.registry, the real training operator v1.9.4
// gives PyTorchJob workers an init container of the mirrored image
// (--pytorch-init-container-image; its compiled-in default is alpine:3.10); with
// spec.images.pullSecrets, the pods of kfdeploy test's TFJob carry the pull secret.
func TestMirroredPyTorchInitImage(t *testing.T) {
	ctx := context.Background()
	bin := binary(t, "training-operator")
	e := newEnv(t)
	appDir, ns := e.NewApp(t, "mirror-trainop", "--components", "core,tf-job-operator")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() { e.Run(t, appDir, "delete", "--purge", "--yes") })
	useMirror(t, appDir)
	e.MustRun(t, appDir, "generate")
	e.MustRun(t, appDir, "apply")
	startTrainingOperator(ctx, t, e, bin, ns)

	job := namespacedSample(t, "pytorchjob-valid.yaml", ns)
	create(ctx, t, e.Env, pytorchjobs, job)
	waitCondition(t, e.Env, pytorchjobs, ns, job.GetName(), "Succeeded", 3*time.Minute)
	images := podImages(ctx, t, e, ns, "training.kubeflow.org/job-name="+job.GetName()+",training.kubeflow.org/replica-type=worker")
	want := mirror + "/library/alpine:3.10"
	found := false
	for _, img := range images {
		if strings.HasPrefix(img, "initContainers/") {
			found = true
			if !strings.HasSuffix(img, "="+want) {
				t.Errorf("worker init container %s, want image %s", img, want)
			}
		}
	}
	if !found {
		t.Fatalf("the operator gave the workers no init container: %v", images)
	}
	t.Logf("worker pods: %v", images)

	// kfdeploy test's TFJob, kept to read its pods: the operator's pods carry the pull secret.
	// Its worker's script runs here, seeing the stand-in's GPU.
	workers := runWorkers(ctx, t, e, ns, gpuStandIn(t))
	r := e.Run(t, appDir, "test", "--keep", "--timeout", "3m", "-o", "json")
	stopWorkers(t, workers)
	if r.Code != 0 {
		t.Fatalf("kfdeploy test --keep: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	pods := checkPullSecret(ctx, t, e, ns, "kfdeploy.dev/test-workload=tfjob,training.kubeflow.org/job-name", "TFJob")
	t.Logf("TFJob pods of kfdeploy test with pull secret %s: %v", pullSecret, pods)
}

// TestMirroredSuggestionImage: with spec.images.registry, the real Katib controller v0.19.0
// starts an Experiment's suggestion service from the mirrored image of katib-config; with
// spec.images.pullSecrets its pod carries the pull secret (through the ServiceAccount
// katib-config names), and so does the pod of a trial of kfdeploy's own trial template.
func TestMirroredSuggestionImage(t *testing.T) {
	controllerBin := binary(t, "katib-controller")
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, ns := e.NewApp(t, "mirror-katib", "--components", "core,katib")
	e.CleanupNamespace(t, ns)
	var controller interface{ Stop(time.Duration) }
	t.Cleanup(func() {
		// The Experiments and their Trials first, while the controller runs to remove their
		// finalizers.
		deleteExperiments(t, e, ns)
		if controller != nil {
			controller.Stop(5 * time.Second)
		}
		e.Run(t, dir, "delete", "--purge", "--yes")
	})
	useMirror(t, dir)
	e.MustRun(t, dir, "param", "set", "katib", "storageClass", `""`)
	// Trials as Jobs only: the training operator's CRDs are not installed here.
	e.MustRun(t, dir, "param", "set", "katib", "trialResources", `["Job.v1.batch"]`)
	e.MustRun(t, dir, "generate")
	for _, c := range e2eutil.AppClaims(t, e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests")), ns) {
		e.CreateReservedPV(t, c)
	}
	e.MustRun(t, dir, "apply")
	controller = startKatibController(ctx, t, e, ns, controllerBin)

	exp := experiment(ns, "mirror-random", 1, 1)
	if _, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).Create(ctx, exp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := mirror + "/kubeflow/katib/suggestion-hyperopt:v0.19.0"
	var got []string
	e2eutil.Eventually(t, 2*time.Minute, "suggestion Deployment mirror-random-random", func(ctx context.Context) (bool, error) {
		d, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, "mirror-random-random", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = got[:0]
		for _, c := range d.Spec.Template.Spec.Containers {
			got = append(got, c.Name+"="+c.Image)
		}
		return true, nil
	})
	if len(got) == 0 || got[0] != "suggestion="+want {
		t.Errorf("suggestion Deployment containers %v, want suggestion=%s", got, want)
	}
	t.Logf("suggestion Deployment: %v", got)

	// The suggestion pod runs as the account that carries the pull secret (katib-config has
	// no pull secrets of its own); admission copies them into the pod.
	e2eutil.Eventually(t, 2*time.Minute, "a pod of the suggestion Deployment", func(ctx context.Context) (bool, error) {
		l, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "katib.kubeflow.org/suggestion=mirror-random"})
		return err == nil && len(l.Items) > 0, err
	})
	pods := checkPullSecret(ctx, t, e, ns, "katib.kubeflow.org/suggestion=mirror-random", "suggestion")
	t.Logf("suggestion pods with pull secret %s: %v", pullSecret, pods)

	// A trial of the template kfdeploy ships for the UI (ConfigMap trial-templates), as the UI
	// submits it: Katib reads the template, and the trial's Job's pod carries the pull secret.
	// The goptuna service serves random search in place of each suggestion Deployment (which
	// the harness then scales to 0: the suggestion pod was checked above).
	stopSuggestions := runSuggestionServices(ctx, t, e, ns, binary(t, "katib-suggestion-goptuna"))
	defer stopSuggestions()
	fromTemplate := experiment(ns, "mirror-template", 1, 1)
	spec := fromTemplate.Object["spec"].(map[string]any)
	spec["parameters"] = append(spec["parameters"].([]any), map[string]any{
		"name": "momentum", "parameterType": "double", "feasibleSpace": map[string]any{"min": "0.5", "max": "0.9"},
	})
	spec["trialTemplate"] = map[string]any{
		"primaryContainerName": "training-container",
		"retain":               true,
		// Katib defaults these only for an inline trialSpec; a template read from a ConfigMap
		// names them, as the UI does (Katib's defaults for a batch Job).
		"successCondition": `status.conditions.#(type=="Complete")#|#(status=="True")#`,
		"failureCondition": `status.conditions.#(type=="Failed")#|#(status=="True")#`,
		"trialParameters": []any{
			map[string]any{"name": "learningRate", "reference": "lr"},
			map[string]any{"name": "momentum", "reference": "momentum"},
		},
		"configMap": map[string]any{"configMapName": "trial-templates", "configMapNamespace": ns, "templatePath": "defaultTrialTemplate.yaml"},
	}
	if _, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).Create(ctx, fromTemplate, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var trialPods string
	e2eutil.Eventually(t, 3*time.Minute, "a trial pod of experiment mirror-template", func(ctx context.Context) (bool, error) {
		l, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if strings.HasPrefix(p.Labels["batch.kubernetes.io/job-name"], "mirror-template-") {
				trialPods = "batch.kubernetes.io/job-name=" + p.Labels["batch.kubernetes.io/job-name"]
				return true, nil
			}
		}
		return false, nil
	})
	pods = checkPullSecret(ctx, t, e, ns, trialPods, "trial")
	t.Logf("trial pods of the shipped template with pull secret %s: %v", pullSecret, pods)
}
