//go:build conformance

package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

var (
	tfjobs      = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"}
	pytorchjobs = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "pytorchjobs"}
)

// TestTrainingOperator runs the Training Operator v1.9.4 with the tf-job-operator component's
// Deployment, ServiceAccount and RBAC: TFJobs and PyTorchJobs run to Succeeded, a TFJob whose
// worker keeps failing ends Failed at its backoff limit, and the operator's own validating
// webhook (failurePolicy Fail) rejects what it refuses.
func TestTrainingOperator(t *testing.T) {
	ctx := context.Background()
	bin := binary(t, "training-operator")
	e := newEnv(t)
	appDir, ns := e.NewApp(t, "trainop", "--components", "core,tf-job-operator")
	e.CleanupNamespace(t, ns)
	// The CRDs and the webhook configuration (its name is fixed by the operator) are
	// cluster-scoped: remove them whatever happens, so that the next app can install them.
	t.Cleanup(func() { e.Run(t, appDir, "delete", "--purge", "--yes") })
	e.MustRun(t, appDir, "generate")
	e.MustRun(t, appDir, "apply")
	p := startTrainingOperator(ctx, t, e, bin, ns)

	// The operator has now written what it owns in kfdeploy's objects: its CA into the webhook
	// configuration's caBundle and its key pair into the Secret training-operator-webhook-cert.
	// A re-apply sends neither (kfdeploy's own fields of both are what it last applied).
	t.Run("a re-apply after the operator wrote its caBundle and certificate sends nothing", func(t *testing.T) {
		before := e.ScrapeRequests(t)
		r := e.MustRun(t, appDir, "apply", "--skip-preflight", "--wait=false", "-o", "json")
		sent := e.ScrapeRequests(t).Since(before)
		if n := sent.Only("validatingwebhookconfigurations.admissionregistration.k8s.io", "secrets").Sent(); n != 0 {
			t.Errorf("re-apply sent %d APPLY/PATCH requests on webhook configurations and Secrets, want none:\n%s", n, sent)
		}
		var rep struct {
			Objects []struct {
				ID     string `json:"id"`
				Action string `json:"action"`
			} `json:"objects"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Fatalf("parse apply -o json: %v\n%s", err, r.Stdout)
		}
		for _, o := range rep.Objects {
			// The harness holds the operator's Deployment at 0 replicas: kfdeploy restores them.
			if o.Action != "unchanged" && !strings.Contains(o.ID, "/Deployment.apps/") {
				t.Errorf("re-apply: %s %s, want unchanged", o.ID, o.Action)
			}
		}
		if n := len(rep.Objects); n == 0 {
			t.Error("re-apply reported no objects")
		}
	})

	t.Run("TFJob PS and two GPU workers succeed", func(t *testing.T) {
		job := namespacedSample(t, "tfjob-gpu-valid.yaml", ns)
		create(ctx, t, e.Env, tfjobs, job)
		waitCondition(t, e.Env, tfjobs, ns, job.GetName(), "Succeeded", 3*time.Minute)
		// The operator created one pod per replica, each worker with its GPU.
		pods, err := e.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "training.kubeflow.org/job-name=" + job.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		gpus := 0
		for _, pod := range pods.Items {
			for _, c := range pod.Spec.Containers {
				if q, ok := c.Resources.Limits["nvidia.com/gpu"]; ok {
					gpus += int(q.Value())
				}
			}
		}
		if len(pods.Items) != 3 || gpus != 2 {
			t.Errorf("%d pods with %d GPUs, want 3 pods (PS + 2 workers) with 2 GPUs", len(pods.Items), gpus)
		}
	})

	t.Run("PyTorchJob master and worker succeed", func(t *testing.T) {
		job := namespacedSample(t, "pytorchjob-valid.yaml", ns)
		create(ctx, t, e.Env, pytorchjobs, job)
		waitCondition(t, e.Env, pytorchjobs, ns, job.GetName(), "Succeeded", 3*time.Minute)
		// The scale subresource reads the Worker count (pytorch_types.go marker).
		sc, err := e.Dyn.Resource(pytorchjobs).Namespace(ns).Get(ctx, job.GetName(), metav1.GetOptions{}, "scale")
		if err != nil {
			t.Fatalf("get scale: %v", err)
		}
		if r, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas"); r != 1 {
			t.Errorf("scale spec.replicas %d, want the Worker replicas, 1", r)
		}
	})

	t.Run("elastic PyTorchJob gets its HorizontalPodAutoscaler and succeeds", func(t *testing.T) {
		job := namespacedSample(t, "pytorchjob-valid.yaml", ns)
		job.SetName("pytorchjob-elastic")
		spec := job.Object["spec"].(map[string]any)
		delete(spec["pytorchReplicaSpecs"].(map[string]any), "Master")
		spec["elasticPolicy"] = map[string]any{
			"minReplicas": int64(1), "maxReplicas": int64(2), "rdzvBackend": "c10d",
			"metrics": []any{map[string]any{"type": "Resource", "resource": map[string]any{
				"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": int64(80)}}}},
		}
		create(ctx, t, e.Env, pytorchjobs, job)
		// pkg/controller.v1/pytorch/hpa.go@v1.9.4: one HPA per elastic job, scaling the job.
		e2eutil.Eventually(t, time.Minute, "HPA of the elastic PyTorchJob", func(ctx context.Context) (bool, error) {
			hpa, err := e.Kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, job.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil && hpa.Spec.ScaleTargetRef.Kind == "PyTorchJob" && hpa.Spec.MaxReplicas == 2, err
		})
		waitCondition(t, e.Env, pytorchjobs, ns, job.GetName(), "Succeeded", 3*time.Minute)
	})

	t.Run("TFJob past its backoff limit fails", func(t *testing.T) {
		job := namespacedSample(t, "tfjob-valid.yaml", ns)
		job.SetName("tfjob-backoff")
		if err := unstructured.SetNestedField(job.Object, int64(1), "spec", "runPolicy", "backoffLimit"); err != nil {
			t.Fatal(err)
		}
		// The worker's container exits 1 under restartPolicy OnFailure: a restart each time
		// (scripts/lib/stages.yaml), which the operator counts against backoffLimit.
		if err := unstructured.SetNestedStringMap(job.Object, map[string]string{"harness.kfdeploy.dev/exit-code": "1"},
			"spec", "tfReplicaSpecs", "Worker", "template", "metadata", "annotations"); err != nil {
			t.Fatal(err)
		}
		create(ctx, t, e.Env, tfjobs, job)
		waitCondition(t, e.Env, tfjobs, ns, job.GetName(), "Failed", 3*time.Minute)
	})

	t.Run("TFJob without a tensorflow container is rejected", func(t *testing.T) {
		job := namespacedSample(t, "tfjob-notensorflow-invalid.yaml", ns)
		_, err := e.Dyn.Resource(tfjobs).Namespace(ns).Create(ctx, job, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "container named tensorflow") {
			t.Fatalf("created or not rejected as Invalid with the reason: %v", err)
		}
		t.Logf("rejected as expected: %v", err)
	})

	t.Run("the operator's webhook rejects what it refuses", func(t *testing.T) {
		// The CRD admits this name (a DNS-1123 subdomain); the webhook wants a DNS-1035 label
		// (pkg/webhooks/tensorflow/tfjob_webhook.go@v1.9.4), so only the real webhook refuses it.
		job := namespacedSample(t, "tfjob-valid.yaml", ns)
		job.SetName("0-tfjob")
		_, err := e.Dyn.Resource(tfjobs).Namespace(ns).Create(ctx, job, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `admission webhook "validator.tfjob.training-operator.kubeflow.org" denied the request`) {
			t.Fatalf("want a denial by the operator's webhook, got %v", err)
		}
		t.Logf("denied as expected: %v", err)
	})

	if f := p.Forbidden(); len(f) > 0 {
		t.Errorf("the operator was refused requests:\n%s", strings.Join(f, "\n"))
	}
}

// startTrainingOperator runs the real operator in place of the training-operator Deployment of
// the app in ns and returns once its controllers and its validating webhook serve. It is stopped
// when the test ends, before the cleanups registered earlier (the app's delete) run.
func startTrainingOperator(ctx context.Context, t *testing.T, e *env, bin, ns string) *harness.Process {
	t.Helper()
	// Other programs on this machine may hold the rendered ports (8080, 8081, 9443 on every
	// address): the webhook server moves to a free port behind its Service, and the metrics and
	// probe servers, which nothing here reads, are switched off ("0").
	webhookPort := freePort(t)
	p, err := e.h.Start(ctx, harness.Program{
		Binary: bin, Namespace: ns, Deployment: "training-operator",
		Args: func(a []string) []string {
			a = harness.SetFlag(a, "--webhook-server-port", fmt.Sprint(webhookPort))
			a = harness.SetFlag(a, "--metrics-bind-address", "0")
			return harness.SetFlag(a, "--health-probe-bind-address", "0")
		},
		Ports: map[int32]int32{9443: webhookPort},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	syncSecretVolume(ctx, t, e, ns, "training-operator-webhook-cert", filepath.Join(p.Dir, "volumes", "cert"))
	// main.go registers the controllers only once the certificate is mounted.
	for _, c := range []string{"tfjob-controller", "pytorchjob-controller"} {
		re := regexp.MustCompile(`Starting workers.*` + c + `|` + c + `.*Starting workers`)
		if _, err := waitLog(ctx, p, re, 3*time.Minute); err != nil {
			t.Fatalf("the %s did not start: %v\n%s", c, err, p.Log())
		}
	}
	// The operator writes its CA into its webhook configuration (cert-controller ensureCerts).
	e2eutil.Eventually(t, time.Minute, "caBundle in the webhook configuration", func(ctx context.Context) (bool, error) {
		vwc, err := e.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "validator.training-operator.kubeflow.org", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, w := range vwc.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return len(vwc.Webhooks) > 0, nil
	})
	return p
}

func waitLog(ctx context.Context, p *harness.Process, re *regexp.Regexp, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.WaitLog(ctx, re)
}

// namespacedSample reads a sample file of one custom resource and puts it into the namespace.
func namespacedSample(t *testing.T, file, ns string) *unstructured.Unstructured {
	t.Helper()
	objs := readSamples(t, file)
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", file, len(objs))
	}
	objs[0].SetNamespace(ns)
	return objs[0]
}

func create(ctx context.Context, t *testing.T, e *e2eutil.Env, gvr schema.GroupVersionResource, o *unstructured.Unstructured) {
	t.Helper()
	if _, err := e.Dyn.Resource(gvr).Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// waitCondition waits for the job's condition of that type to be True; it fails early when
// the job ends the other way.
func waitCondition(t *testing.T, e *e2eutil.Env, gvr schema.GroupVersionResource, ns, name, want string, timeout time.Duration) {
	t.Helper()
	other := map[string]string{"Succeeded": "Failed", "Failed": "Succeeded"}[want]
	var last []any
	e2eutil.Eventually(t, timeout, fmt.Sprintf("%s %s/%s %s", gvr.Resource, ns, name, want), func(ctx context.Context) (bool, error) {
		o, err := e.Dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last, _, _ = unstructured.NestedSlice(o.Object, "status", "conditions")
		for _, c := range last {
			c := c.(map[string]any)
			if c["status"] != "True" {
				continue
			}
			switch c["type"] {
			case want:
				return true, nil
			case other:
				return false, fmt.Errorf("ended %s instead: %v", other, c["message"])
			}
		}
		return false, nil
	})
	t.Logf("%s %s: %s; conditions %v", gvr.Resource, name, want, last)
}
