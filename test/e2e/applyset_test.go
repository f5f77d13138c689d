//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestKubectlUnderstandsApplySet checks the inventory against kubectl's own ApplySet code:
// kubectl computes the same id, reads the member kinds and namespaces from the parent, finds
// the members by label, and would prune the one that its manifest set no longer contains.
func TestKubectlUnderstandsApplySet(t *testing.T) {
	kubectl := os.Getenv("KFDEPLOY_KUBECTL")
	if kubectl == "" {
		t.Fatal("KFDEPLOY_KUBECTL must name the cluster's kubectl: run with 'make e2e'")
	}
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	writeYAMLComponent(t, appDir, "extra", configMaps(ns, 2))
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")

	// kubectl refuses an ApplySet of another tool, as KEP-3659 asks; hand it over for the check.
	patch := []byte(`{"metadata":{"annotations":{"applyset.kubernetes.io/tooling":"kubectl/v1.37.2"}}}`)
	if _, err := e.kube.CoreV1().Secrets(ns).Patch(ctx, "kfdeploy-app", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(t.TempDir(), "keep.yaml")
	if err := os.WriteFile(keep, []byte(configMaps(ns, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "--kubeconfig", e.kubeconfig, "apply", "-n", ns, "--server-side", "--force-conflicts",
		"--applyset=kfdeploy-app", "--prune", "--dry-run=server", "-f", keep)
	cmd.Env = append(os.Environ(), "KUBECTL_APPLYSET=true")
	out, err := cmd.CombinedOutput()
	t.Logf("kubectl apply --applyset --prune --dry-run=server:\n%s", out)
	if err != nil {
		t.Fatalf("kubectl rejected kfdeploy's ApplySet: %v", err)
	}
	if !strings.Contains(string(out), "configmap/cm-0001 pruned") {
		t.Errorf("kubectl would not prune the member missing from its manifests; it does not see the members")
	}
	if !strings.Contains(string(out), "role.rbac.authorization.k8s.io/kubeflow pruned") {
		t.Errorf("kubectl does not see the Role member: the group-kinds annotation is not understood")
	}
}
