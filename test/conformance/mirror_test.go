//go:build conformance

package conformance

import (
	"context"
	"os"
	"path/filepath"
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

// useMirror sets spec.images.registry in the app's app.yaml (spec is its last section).
func useMirror(t *testing.T, appDir string) {
	t.Helper()
	path := filepath.Join(appDir, "app.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("  images:\n    registry: "+mirror+"\n")...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
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
}

// TestMirroredPyTorchInitImage: with spec.images.registry, the real training operator v1.9.4
// gives PyTorchJob workers an init container of the mirrored image
// (--pytorch-init-container-image; its compiled-in default is alpine:3.10).
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
}

// TestMirroredSuggestionImage: with spec.images.registry, the real Katib controller v0.19.0
// starts an Experiment's suggestion service from the mirrored image of katib-config.
func TestMirroredSuggestionImage(t *testing.T) {
	controllerBin := binary(t, "katib-controller")
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, ns := e.NewApp(t, "mirror-katib", "--components", "core,katib")
	e.CleanupNamespace(t, ns)
	var controller interface{ Stop(time.Duration) }
	t.Cleanup(func() {
		// The Experiment first, while the controller runs to remove its finalizer.
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		_ = e.Dyn.Resource(experimentsGVR).Namespace(ns).DeleteCollection(dctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		e2eutil.Eventually(t, time.Minute, "the experiment is deleted", func(ctx context.Context) (bool, error) {
			l, err := e.Dyn.Resource(experimentsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
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
}
