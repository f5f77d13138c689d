//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// writeRawApp writes an app whose only component is yamlText, in namespace ns.
func writeRawApp(t *testing.T, ns, yamlText string) string {
	t.Helper()
	appDir := filepath.Join(t.TempDir(), "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf("apiVersion: kfdeploy.dev/v1alpha1\nkind: App\nmetadata:\n  name: app\nspec:\n  platform: none\n  namespace: %s\n  components:\n", ns)
	if err := os.WriteFile(filepath.Join(appDir, "app.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	writeYAMLComponent(t, appDir, "objs", yamlText)
	return appDir
}

// writeRequests reads the API server's apiserver_request_total and sums the APPLY and PATCH
// requests on the main resource (no subresource) of the given resources, for every client.
func (e *env) writeRequests(t *testing.T, resources ...string) int {
	t.Helper()
	return e.util().ScrapeRequests(t).Sent(resources...)
}

// TestReapplySendsOnlyChanges: a re-apply with nothing changed sends no apply (or patch)
// request at all; drift is never skipped: a deleted object is recreated, an edited field and a
// scaled Deployment are sent (a conflict naming object, field and manager, restored with
// --force-conflicts), and a label another manager added (not a field of kfdeploy's) sends nothing.
func TestReapplySendsOnlyChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("e2e-skip")
	e.cleanupNamespace(t, ns)
	appDir := writeRawApp(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: %[1]s
data:
  mode: "fast"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/pause:3.10}]
`, ns)+configMaps(ns, 20))
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	resources := []string{"namespaces", "configmaps", "services", "deployments", "secrets", "leases"}

	before := e.writeRequests(t, resources...)
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if sent := e.writeRequests(t, resources...) - before; sent != 0 {
		t.Errorf("a re-apply with nothing changed sent %d apply/patch requests, want 0", sent)
	}
	if n := rep.Counts["unchanged"]; n != len(rep.Objects) || n != 24 {
		t.Errorf("re-apply: %d of %d objects unchanged, want all 24: %v", n, len(rep.Objects), rep.Counts)
	}
	// With preflight too: its upgrade check dry-runs no object that the plan leaves unchanged
	// (a dry-run apply is counted like any other).
	before = e.writeRequests(t, resources...)
	e.mustRun(t, appDir, "apply")
	if sent := e.writeRequests(t, resources...) - before; sent != 0 {
		t.Errorf("a re-apply with preflight and nothing changed sent %d apply/patch requests (dry runs included), want 0", sent)
	}

	// The plan shows the same: nothing to send.
	dry := e.mustRun(t, appDir, "apply", "--dry-run=client", "--skip-preflight", "-o", "json")
	for _, o := range parseReport(t, dry).Objects {
		if o.Action != "unchanged" || !strings.Contains(o.Detail, "unchanged since the last apply") {
			t.Errorf("dry run plan for %s: %s (%s), want unchanged with its reason", o.ID, o.Action, o.Detail)
		}
	}

	// --skip-unchanged=false sends every object.
	before = e.writeRequests(t, "configmaps")
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--skip-unchanged=false")
	if sent := e.writeRequests(t, "configmaps") - before; sent < 21 {
		t.Errorf("--skip-unchanged=false sent %d ConfigMap applies, want every one of the 21", sent)
	}

	// Drift by delete: recreated.
	if err := e.kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rep = parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if a := rep.action(ns + "/ConfigMap/settings"); a != "created" {
		t.Errorf("deleted ConfigMap: %q, want created", a)
	}
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Errorf("deleted ConfigMap not recreated: %v", err)
	}

	// Drift by edit of a field kfdeploy owns (as kubectl edit does it: an update).
	cm, err := e.kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "slow"
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, appDir, "apply", "--skip-preflight")
	if r.code == 0 || !strings.Contains(r.stderr, ns+"/ConfigMap/settings") || !strings.Contains(r.stderr, ".data.mode") || !strings.Contains(r.stderr, "kubectl-edit") {
		t.Errorf("an edited field must be sent and reported as a conflict naming object, field and manager; exit %d:\n%s", r.code, r.stderr)
	}
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--force-conflicts")
	if cm, err = e.kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["mode"] != "fast" {
		t.Errorf("--force-conflicts did not restore data.mode: %v %v", cm.Data, err)
	}

	// Drift by scale: sent, a conflict on .spec.replicas, restored with --force-conflicts.
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	if _, err := e.kube.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	r = e.run(t, appDir, "apply", "--skip-preflight", "--wait=false")
	if r.code == 0 || !strings.Contains(r.stderr, ns+"/Deployment.apps/web") || !strings.Contains(r.stderr, ".spec.replicas") || !strings.Contains(r.stderr, `"kubectl"`) {
		t.Errorf("a scaled Deployment must be sent and reported as a conflict; exit %d:\n%s", r.code, r.stderr)
	}
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--force-conflicts")
	d, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || ptr.Deref(d.Spec.Replicas, 0) != 1 {
		t.Errorf("--force-conflicts did not restore replicas: %v %v", d.Spec.Replicas, err)
	}

	// A field only another manager writes (a label kubectl label adds) is not kfdeploy's to
	// restore, and kfdeploy's own fields are as it applied them: nothing is sent.
	cm, err = e.kube.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0001", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Labels["team"] = "ops"
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-label"}); err != nil {
		t.Fatal(err)
	}
	before = e.writeRequests(t, "configmaps")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	if sent := e.writeRequests(t, "configmaps") - before; sent != 0 {
		t.Errorf("after another manager's label, apply sent %d ConfigMap applies, want 0", sent)
	}
	if diff := e.run(t, appDir, "diff"); diff.code != 0 {
		t.Errorf("diff after another manager's label: exit %d, want 0:\n%s", diff.code, diff.stdout)
	}
}
