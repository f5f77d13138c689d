//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// driftApp is an app with what others write to: a Deployment (labels, resources, an env var),
// a claim that the PV controller binds, a webhook configuration whose caBundle a controller
// injects, and a Secret a controller fills.
func driftApp(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ui
  namespace: %[1]s
  labels: {app.kubernetes.io/name: ui, app.kubernetes.io/component: frontend}
spec:
  replicas: 1
  selector: {matchLabels: {app: ui}}
  template:
    metadata:
      labels: {app: ui}
      annotations: {example.com/owner: kfdeploy}
    spec:
      containers:
      - name: ui
        image: registry.k8s.io/pause:3.10
        env: [{name: MODE, value: fast}]
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {memory: 32Mi}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: %[1]s
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Secret
metadata:
  name: token
  namespace: %[1]s
type: Opaque
---
apiVersion: v1
kind: Service
metadata:
  name: hook
  namespace: %[1]s
spec:
  selector: {app: hook}
  ports: [{port: 443, targetPort: 8443}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: %[1]s-hook
webhooks:
- name: hook.%[1]s.e2e.invalid
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  clientConfig:
    service: {name: hook, namespace: %[1]s, path: /mutate}
  rules:
  - apiGroups: [e2e.invalid]
    apiVersions: [v1]
    operations: [CREATE]
    resources: [things]
`, ns)
}

// driftResources are the resources of driftApp, the inventory and the lock: a re-apply that
// leaves everything unchanged sends no APPLY or PATCH to any of them.
var driftResources = []string{"namespaces", "deployments", "persistentvolumeclaims", "secrets", "services", "mutatingwebhookconfigurations", "leases"}

// newDriftApp applies driftApp with a PV reserved for its claim and waits for the claim to be
// bound by the PV controller.
func newDriftApp(t *testing.T, e *env) (string, string) {
	t.Helper()
	ns := uniqueName("e2e-drift")
	e.cleanupNamespace(t, ns)
	appDir := writeRawApp(t, ns, driftApp(ns))
	t.Cleanup(func() { e.run(t, appDir, "delete", "--purge", "--yes") })
	e.util().CreateReservedPV(t, e2eutil.PVClaim{Namespace: ns, Name: "data", Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}})
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	eventually(t, 2*time.Minute, "claim data bound by the PV controller", func(ctx context.Context) (bool, error) {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName != "", err
	})
	return appDir, ns
}

// TestDriftOthersFieldsSendNothing: fields that other managers own never make kfdeploy send:
// after the PV controller binds the claim, a rollout restart annotates the pod template, a
// controller injects the webhook's caBundle and another fills the Secret, a re-apply reports
// every object unchanged and sends no apply or patch request, and diff finds nothing.
func TestDriftOthersFieldsSendNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := newDriftApp(t, e)

	restart := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	if _, err := e.kube.AppsV1().Deployments(ns).Patch(ctx, "ui", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{FieldManager: "kubectl-rollout"}); err != nil {
		t.Fatal(err)
	}
	caBundle := `[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}]`
	if _, err := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, ns+"-hook", types.JSONPatchType, []byte(caBundle), metav1.PatchOptions{FieldManager: "cainjector"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.CoreV1().Secrets(ns).Patch(ctx, "token", types.MergePatchType, []byte(`{"data":{"token":"c2VjcmV0"}}`), metav1.PatchOptions{FieldManager: "token-controller"}); err != nil {
		t.Fatal(err)
	}

	before := e.util().ScrapeRequests(t)
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	sent := e.util().ScrapeRequests(t).Since(before)
	if n := sent.Sent(driftResources...); n != 0 {
		var writes []string
		for _, r := range driftResources {
			if n := sent.Sent(r); n > 0 {
				writes = append(writes, fmt.Sprintf("%s: %d", r, n))
			}
		}
		t.Errorf("after others wrote only their own fields, a re-apply sent %d apply/patch requests, want 0: %v", n, writes)
	}
	for _, o := range rep.Objects {
		if o.Action != "unchanged" {
			t.Errorf("%s: %s (%s), want unchanged: only other managers wrote to it", o.ID, o.Action, o.Detail)
		}
	}
	if len(rep.Objects) != 6 {
		t.Errorf("re-apply reported %d objects, want the app's 6", len(rep.Objects))
	}
	diff := e.run(t, appDir, "diff")
	if diff.code != 0 {
		t.Errorf("diff after others wrote only their own fields: exit %d, want 0:\n%s", diff.code, diff.stdout)
	}
	// What the others wrote is theirs and stays.
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName == "" {
		t.Errorf("the claim lost its volume: %v %v", pvc.Spec.VolumeName, err)
	}
}

// TestDriftRemovedFieldsRestored: drift that only removes fields kfdeploy applied — a label
// (kubectl label ...-) and a container's resources (a JSON patch) — is shown by diff (exit
// non-zero) and restored by apply.
func TestDriftRemovedFieldsRestored(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := newDriftApp(t, e)
	deploy := ns + "/Deployment.apps/ui"

	for _, drift := range []struct {
		name, manager string
		patchType     types.PatchType
		patch         string
		restored      func(labels map[string]string, c corev1.Container) bool
	}{
		{"a removed label", "kubectl-label", types.MergePatchType, `{"metadata":{"labels":{"app.kubernetes.io/component":null}}}`,
			func(labels map[string]string, _ corev1.Container) bool {
				return labels["app.kubernetes.io/component"] == "frontend"
			}},
		{"removed container resources", "kubectl-patch", types.JSONPatchType, `[{"op":"remove","path":"/spec/template/spec/containers/0/resources"}]`,
			func(_ map[string]string, c corev1.Container) bool {
				return c.Resources.Limits.Memory().String() == "32Mi"
			}},
	} {
		t.Run(drift.name, func(t *testing.T) {
			d, err := e.kube.AppsV1().Deployments(ns).Patch(ctx, "ui", drift.patchType, []byte(drift.patch), metav1.PatchOptions{FieldManager: drift.manager})
			if err != nil {
				t.Fatal(err)
			}
			if drift.restored(d.Labels, d.Spec.Template.Spec.Containers[0]) {
				t.Fatal("the patch did not remove the field")
			}
			diff := e.run(t, appDir, "diff")
			if diff.code == 0 || !strings.Contains(diff.stdout, deploy) {
				t.Errorf("diff after %s: exit %d, want non-zero naming %s:\n%s", drift.name, diff.code, deploy, diff.stdout)
			}
			rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
			if a := rep.action(deploy); a != "configured" {
				t.Errorf("apply after %s: %s is %q, want configured", drift.name, deploy, a)
			}
			d, err = e.kube.AppsV1().Deployments(ns).Get(ctx, "ui", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !drift.restored(d.Labels, d.Spec.Template.Spec.Containers[0]) {
				t.Errorf("apply did not restore %s: labels %v, resources %v", drift.name, d.Labels, d.Spec.Template.Spec.Containers[0].Resources)
			}
			if diff := e.run(t, appDir, "diff"); diff.code != 0 {
				t.Errorf("diff after the restoring apply: exit %d, want 0:\n%s", diff.code, diff.stdout)
			}
		})
	}
}
