//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestPreflightRemovedAPIVersion: a user component with a policy/v1beta1 PodDisruptionBudget
// (removed in Kubernetes v1.25) fails the apis check naming its file, the object and
// policy/v1; apply stops before writing anything.
func TestPreflightRemovedAPIVersion(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	writeYAMLComponent(t, appDir, "budget", fmt.Sprintf(`apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: %s
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
`, ns))
	e.mustRun(t, appDir, "generate")

	r := e.run(t, appDir, "preflight", "-o", "json")
	wantExit(t, r, 1)
	rep := parsePreflight(t, r)
	if !rep.has("apis", "fail", "manifests/budget.yaml", "policy/v1beta1 PodDisruptionBudget "+ns+"/web", "removed in Kubernetes v1.25", "use apiVersion policy/v1") {
		t.Errorf("apis: %v", rep.findings("apis"))
	}
	// The permissions check leaves the unserved kind to the apis check.
	for _, f := range rep.findings("permissions") {
		if strings.Contains(f, "PodDisruptionBudget") {
			t.Errorf("permissions names the unserved kind too: %s", f)
		}
	}
	e.wantApplyRefused(t, appDir, ns)
}

// TestPreflightPodsThatDoNotFit: a pod requesting 20 CPUs (no node has more than 8) and one
// with a nodeSelector no node has each fail the fit check with the scheduler's reasons.
func TestPreflightPodsThatDoNotFit(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	writeYAMLComponent(t, appDir, "greedy", deployment(ns, "greedy", "resources: {requests: {cpu: '20', memory: 1Gi}}", ""))
	writeYAMLComponent(t, appDir, "picky", deployment(ns, "picky", "resources: {requests: {cpu: 100m}}", "nodeSelector: {disktype: e2e-nvme}"))
	e.mustRun(t, appDir, "generate")

	r := e.run(t, appDir, "preflight", "-o", "json")
	wantExit(t, r, 1)
	rep := parsePreflight(t, r)
	if !rep.has("fit", "fail", ns+"/greedy: 0/", "nodes fit:", "untolerated taint node-role.kubernetes.io/control-plane", "Insufficient cpu") {
		t.Errorf("fit, greedy: %v", rep.findings("fit"))
	}
	if !rep.has("fit", "fail", ns+"/picky: 0/", "nodes fit:", "didn't match the pod's node affinity/selector") {
		t.Errorf("fit, picky: %v", rep.findings("fit"))
	}
	for _, c := range rep.Checks {
		switch {
		case c.Name != "fit":
		case strings.Contains(c.Finding, "/greedy:") && !strings.Contains(c.Remedy, "the pod requests cpu 20, memory 1Gi"):
			t.Errorf("greedy remedy %q does not say what the pod requests", c.Remedy)
		case strings.Contains(c.Finding, "/picky:") && !strings.Contains(c.Remedy, "kubectl label node NODE disktype=e2e-nvme"):
			t.Errorf("picky remedy %q does not say how to label a node", c.Remedy)
		}
	}
	if rep.has("fit", "fail", ns+"/picky", "Insufficient") {
		t.Errorf("picky fails for resources too: %v", rep.findings("fit"))
	}
}

// deployment renders a one-replica Deployment with a container's resources line and an
// optional pod spec line.
func deployment(ns, name, resources, podLine string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      %[4]s
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
        %[3]s
`, ns, name, resources, podLine)
}

// TestPreflightPresetsFit: the presets' APIs are served and their pods fit the local
// cluster's nodes (three tainted control-plane nodes and four 8-CPU GPU workers), as
// `make demo` needs.
func TestPreflightPresetsFit(t *testing.T) {
	e := newEnv(t)
	for _, preset := range []string{"minimal", "standard", "full"} {
		t.Run(preset, func(t *testing.T) {
			appDir, _ := e.newApp(t, "--preset", preset)
			if preset == "full" {
				setParams(t, appDir, "nfs-provisioner", map[string]any{"server": "127.0.0.1", "path": "/nfs"})
			}
			e.mustRun(t, appDir, "generate")
			rep := parsePreflight(t, e.run(t, appDir, "preflight", "-o", "json"))
			for _, check := range []string{"apis", "fit"} {
				if f := rep.findings(check); len(f) != 1 || !strings.HasPrefix(f[0], "ok: ") {
					t.Errorf("%s: %v", check, f)
				}
			}
		})
	}
}

// TestApplyShowsServerWarningsOnce: the API server's warnings on apply (here: a deprecated node
// label in two pod templates' nodeSelector) are shown once each, naming the object.
func TestApplyShowsServerWarningsOnce(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	var b strings.Builder
	for _, name := range []string{"first", "second"} {
		b.WriteString("---\n" + deployment(ns, name, "resources: {requests: {cpu: 10m}}", "nodeSelector: {beta.kubernetes.io/os: linux}"))
	}
	writeYAMLComponent(t, appDir, "warned", b.String())
	e.mustRun(t, appDir, "generate")
	r := e.mustRun(t, appDir, "apply", "--timeout", "2m")
	var lines []string
	for _, l := range strings.Split(r.stdout+r.stderr, "\n") {
		if strings.Contains(l, "warning from the API server") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "beta.kubernetes.io/os") || !strings.Contains(lines[0], ns+"/Deployment.apps/") {
		t.Errorf("warning lines %q, want one naming the label and a Deployment\nstdout:\n%s\nstderr:\n%s", lines, r.stdout, r.stderr)
	}
	e.mustRun(t, appDir, "delete", "--purge", "--yes")
}
