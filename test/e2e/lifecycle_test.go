//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLifecycle walks the whole path: init, generate twice (byte-identical), apply (pods
// Running on simulated GPU nodes, the notebook PVC Bound to a PV the operator provided), apply
// again (no change), delete (all gone but the kept PVC), delete again, delete --purge.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "2Gi", "gpus": 1})
	pvName := ns + "-data"
	e.createPV(t, pvName, "2Gi")

	e.mustRun(t, appDir, "generate", "k8s")
	first := readTree(t, filepath.Join(appDir, "manifests"))
	e.mustRun(t, appDir, "generate")
	second := readTree(t, filepath.Join(appDir, "manifests"))
	if len(first) == 0 {
		t.Fatal("generate wrote no manifests")
	}
	for name, data := range first {
		if string(second[name]) != string(data) {
			t.Errorf("generate is not deterministic: %s differs between two runs", name)
		}
	}
	if len(first) != len(second) {
		t.Errorf("generate wrote %d files, then %d", len(first), len(second))
	}

	rep := parseReport(t, e.mustRun(t, appDir, "apply", "k8s", "-o", "json", "--timeout", "3m"))
	objects := 0
	for _, data := range first {
		objects += strings.Count(string(data), "\n---\n") + strings.Count(string(data[:min(4, len(data))]), "---")
	}
	if rep.Counts["created"] != objects || rep.Counts["failed"] != 0 {
		t.Errorf("first apply: counts %v, want all %d generated objects created and none failed", rep.Counts, objects)
	}
	deploymentID := ns + "/Deployment.apps/jupyter"
	if a := rep.action(deploymentID); a != "created" {
		t.Errorf("%s: action %q, want created", deploymentID, a)
	}
	pods, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("want 1 notebook pod, got %d", len(pods.Items))
	}
	pod := pods.Items[0]
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("pod %s is %s, want Running", pod.Name, pod.Status.Phase)
	}
	if !strings.HasPrefix(pod.Spec.NodeName, "k8s-g") {
		t.Errorf("pod %s with a GPU request runs on %q, want a GPU worker k8s-g*", pod.Name, pod.Spec.NodeName)
	}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "jupyter-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName != pvName {
		t.Errorf("PVC jupyter-data is %s on %q, want Bound to %s", pvc.Status.Phase, pvc.Spec.VolumeName, pvName)
	}

	status := e.mustRun(t, appDir, "status")
	for _, want := range []string{regexp.QuoteMeta(deploymentID) + `\s+Current\s+Deployment is available`,
		regexp.QuoteMeta(pod.Name) + `\s+1/1\s+Running\s+` + pod.Spec.NodeName} {
		if !regexp.MustCompile(want).MatchString(status.stdout) {
			t.Errorf("status lacks a line matching %q:\n%s", want, status.stdout)
		}
	}

	again := parseReport(t, e.mustRun(t, appDir, "apply", "-o", "json"))
	if again.Counts["created"] != 0 || again.Counts["configured"] != 0 || again.Counts["unchanged"] != rep.Counts["created"] {
		t.Errorf("second apply changed something: counts %v", again.Counts)
	}

	del := parseReport(t, e.mustRun(t, appDir, "delete", "k8s", "-o", "json"))
	pvcID := ns + "/PersistentVolumeClaim/jupyter-data"
	if a := del.action(pvcID); a != "kept" {
		t.Errorf("delete: %s action %q, want kept", pvcID, a)
	}
	if a := del.action(deploymentID); a != "deleted" {
		t.Errorf("delete: %s action %q, want deleted", deploymentID, a)
	}
	for _, check := range []struct {
		what string
		get  func() error
	}{
		{"deployment", func() error {
			_, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "jupyter", metav1.GetOptions{})
			return err
		}},
		{"service", func() error {
			_, err := e.kube.CoreV1().Services(ns).Get(ctx, "jupyter", metav1.GetOptions{})
			return err
		}},
		{"service account", func() error {
			_, err := e.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "kubeflow", metav1.GetOptions{})
			return err
		}},
		{"role", func() error {
			_, err := e.kube.RbacV1().Roles(ns).Get(ctx, "kubeflow", metav1.GetOptions{})
			return err
		}},
	} {
		if err := check.get(); !apierrors.IsNotFound(err) {
			t.Errorf("after delete, %s: got %v, want NotFound", check.what, err)
		}
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "jupyter-data", metav1.GetOptions{}); err != nil {
		t.Errorf("delete without --purge removed the PVC: %v", err)
	}

	delAgain := e.mustRun(t, appDir, "delete")
	if strings.Contains(delAgain.stdout, " deleted") {
		t.Errorf("second delete deleted something:\n%s", delAgain.stdout)
	}
	if !strings.Contains(delAgain.stdout, "jupyter-data kept") {
		t.Errorf("second delete does not report the kept PVC:\n%s", delAgain.stdout)
	}

	purge := parseReport(t, e.mustRun(t, appDir, "delete", "--purge", "--yes", "-o", "json"))
	if a := purge.action(pvcID); a != "deleted" {
		t.Errorf("delete --purge: %s action %q, want deleted", pvcID, a)
	}
	eventually(t, 2*time.Minute, "namespace "+ns+" deleted", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
	final := e.mustRun(t, appDir, "delete", "--purge", "--yes")
	if !strings.Contains(final.stdout, "nothing to delete") {
		t.Errorf("delete after purge: want 'nothing to delete', got:\n%s", final.stdout)
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}
