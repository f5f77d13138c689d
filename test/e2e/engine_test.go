//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	applyappsv1 "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/config"
)

// writeYAMLComponent adds a plain-YAML component to the app and lists it in app.yaml.
func writeYAMLComponent(t *testing.T, appDir, name, yamlText string) {
	t.Helper()
	dir := filepath.Join(appDir, "components", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects.yaml"), []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(appDir, "app.yaml")
	data, err := os.ReadFile(appFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "- name: "+name+"\n") {
		data = bytes.Replace(data, []byte("  components:\n"), []byte("  components:\n    - name: "+name+"\n"), 1)
		if err := os.WriteFile(appFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// configMaps renders n ConfigMaps as a YAML stream.
func configMaps(ns string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  namespace: %s\ndata:\n  index: %q\n", i, ns, fmt.Sprint(i))
	}
	return b.String()
}

// removeComponent drops a component, with its params, from app.yaml.
func removeComponent(t *testing.T, appDir, name string) {
	t.Helper()
	app, err := config.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	kept := app.Spec.Components[:0]
	for _, c := range app.Spec.Components {
		if c.Name != name {
			kept = append(kept, c)
		}
	}
	if len(kept) == len(app.Spec.Components) {
		t.Fatalf("app.yaml has no component %s", name)
	}
	app.Spec.Components = kept
	data, err := app.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appDir, config.FileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appliedNotebookApp generates and applies core and jupyter, the notebook's claim bound to a PV
// the test provides.
func (e *env) appliedNotebookApp(t *testing.T) (string, string) {
	t.Helper()
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "1Gi"})
	e.createPV(t, ns+"-pv", "1Gi")
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	return appDir, ns
}

func TestPruneAfterComponentRemoved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.appliedNotebookApp(t)

	removeComponent(t, appDir, "jupyter")
	e.mustRun(t, appDir, "generate")
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if a := rep.action(ns + "/Deployment.apps/jupyter"); a != "pruned" {
		t.Errorf("deployment: action %q, want pruned", a)
	}
	if a := rep.action(ns + "/PersistentVolumeClaim/jupyter-data"); a != "kept" {
		t.Errorf("PVC: action %q, want kept", a)
	}
	if _, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "jupyter", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pruned deployment still there: %v", err)
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "jupyter-data", metav1.GetOptions{}); err != nil {
		t.Errorf("prune removed the PVC: %v", err)
	}
	// The ApplySet parent lists the kept PVC's kind, so a later delete --purge finds it.
	parent, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "kfdeploy-app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kinds := parent.Annotations["applyset.kubernetes.io/contains-group-kinds"]; !strings.Contains(kinds, "PersistentVolumeClaim") || strings.Contains(kinds, "Deployment.apps") {
		t.Errorf("contains-group-kinds = %q, want PersistentVolumeClaim and no Deployment.apps", kinds)
	}
	purge := parseReport(t, e.mustRun(t, appDir, "delete", "--purge", "--yes", "-o", "json"))
	if a := purge.action(ns + "/PersistentVolumeClaim/jupyter-data"); a != "deleted" {
		t.Errorf("delete --purge: PVC action %q, want deleted", a)
	}
}

func TestDeleteWithoutAppDirectory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	if err := os.RemoveAll(appDir); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	rep := parseReport(t, e.mustRun(t, elsewhere, "delete", "--app", "app", "--namespace", ns, "-o", "json"))
	if rep.Counts["deleted"] == 0 {
		t.Fatalf("delete --app deleted nothing: %+v", rep)
	}
	eventually(t, 2*time.Minute, "namespace deleted", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
	if _, err := e.kube.RbacV1().Roles(ns).Get(ctx, "kubeflow", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("role still there: %v", err)
	}
}

const secretComponent = `local k = import 'kfdeploy/k.libsonnet';
{
  description: 'a secret and a config map',
  params: { value: { default: 'one', description: 'x' }, token: { default: 'tok-aaaa', description: 'x' } },
  render(p, env):: [
    k.object('v1', 'ConfigMap', 'settings', env.namespace) + { data: { value: p.value } },
    k.object('v1', 'Secret', 'creds', env.namespace) + { stringData: { token: p.token } },
  ],
}
`

func TestDiffExitCodesAndRedaction(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	if err := os.MkdirAll(filepath.Join(appDir, "components"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appDir, "components", "settings.jsonnet"), []byte(secretComponent), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(appDir, "app.yaml"))
	data = bytes.Replace(data, []byte("    - name: core\n"), []byte("    - name: core\n    - name: settings\n"), 1)
	if err := os.WriteFile(filepath.Join(appDir, "app.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, appDir, "generate")

	before := e.run(t, appDir, "diff")
	if before.code != 1 || !strings.Contains(before.stdout, "/ConfigMap/settings: create") {
		t.Errorf("diff before apply: exit %d, want 1 and the ConfigMap to create", before.code)
	}
	if strings.Contains(before.stdout, "tok-aaaa") {
		t.Errorf("diff printed a secret value:\n%s", before.stdout)
	}
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	if r := e.run(t, appDir, "diff"); r.code != 0 {
		t.Errorf("diff after apply: exit %d, want 0 (no changes)\n%s", r.code, r.stdout)
	}

	setParams(t, appDir, "settings", map[string]any{"value": "two", "token": "tok-bbbb"})
	e.mustRun(t, appDir, "generate")
	changed := e.run(t, appDir, "diff")
	if changed.code != 1 {
		t.Errorf("diff after a change: exit %d, want 1", changed.code)
	}
	for _, want := range []string{"-  value: one", "+  value: two", "*** (before)", "*** (after)"} {
		if !strings.Contains(changed.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, changed.stdout)
		}
	}
	for _, secret := range []string{"tok-aaaa", "tok-bbbb", "dG9rLWFhYWE", "dG9rLWJiYmI"} {
		if strings.Contains(changed.stdout, secret) {
			t.Errorf("diff printed the secret value %s", secret)
		}
	}
	if r := e.run(t, appDir, "diff", "--server", "https://127.0.0.1:1"); r.code != 2 || !strings.Contains(r.stderr, "cannot reach") {
		t.Errorf("diff against an unreachable server: exit %d, want 2 for not reaching it: %s", r.code, r.stderr)
	}
}

func TestStuckFinalizerDeleteTimesOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	writeYAMLComponent(t, appDir, "extra", configMaps(ns, 1))
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
	patch := []byte(`{"metadata":{"finalizers":["example.com/hold"]}}`)
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "cm-0000", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, appDir, "delete", "--timeout", "3s")
	if r.code == 0 {
		t.Fatal("delete with a stuck finalizer succeeded, want a timeout")
	}
	if !strings.Contains(r.stderr, ns+"/ConfigMap/cm-0000 (finalizers: example.com/hold)") {
		t.Errorf("timeout message does not name the object and its finalizer:\n%s", r.stderr)
	}
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Patch(ctx, "cm-0000", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, appDir, "delete")
}

func TestConflictingFieldManager(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.appliedNotebookApp(t)

	other := applyappsv1.Deployment("jupyter", ns).WithSpec(applyappsv1.DeploymentSpec().WithReplicas(3))
	if _, err := e.kube.AppsV1().Deployments(ns).Apply(ctx, other, metav1.ApplyOptions{FieldManager: "ops-team", Force: true}); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, appDir, "apply", "--skip-preflight")
	if r.code == 0 {
		t.Fatal("apply over a field another manager owns succeeded without --force-conflicts")
	}
	if !strings.Contains(r.stderr, ".spec.replicas") || !strings.Contains(r.stderr, "ops-team") || !strings.Contains(r.stderr, "--force-conflicts") {
		t.Errorf("conflict message must name the field, the manager and the flag:\n%s", r.stderr)
	}
	e.mustRun(t, appDir, "apply", "--skip-preflight", "--force-conflicts")
	d, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "jupyter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(d.Spec.Replicas, 0) != 1 {
		t.Errorf("replicas = %d after --force-conflicts, want the app's 1", ptr.Deref(d.Spec.Replicas, 0))
	}
}

// hugeCRD renders a CRD whose schema is over minBytes: many documented properties.
func hugeCRD(minBytes int) string {
	var props strings.Builder
	for i := 0; props.Len() < minBytes; i++ {
		fmt.Fprintf(&props, "                  field%05d:\n                    type: string\n                    description: %q\n", i,
			strings.Repeat("A documented field of a large real-world custom resource. ", 3))
	}
	return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: hugethings.e2e.kfdeploy.dev
spec:
  group: e2e.kfdeploy.dev
  scope: Namespaced
  names: {plural: hugethings, singular: hugething, kind: HugeThing}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              settings:
                type: object
                properties:
` + props.String()
}

func TestHugeCRD(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	crd := hugeCRD(650 * 1024)
	if len(crd) < 600*1024 {
		t.Fatalf("CRD is only %d bytes", len(crd))
	}
	writeYAMLComponent(t, appDir, "huge", crd+"---\napiVersion: e2e.kfdeploy.dev/v1\nkind: HugeThing\nmetadata:\n  name: one\n  namespace: "+ns+"\nspec:\n  settings:\n    field00001: x\n")
	e.mustRun(t, appDir, "generate")
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if a := rep.action("CustomResourceDefinition.apiextensions.k8s.io/hugethings.e2e.kfdeploy.dev"); a != "created" {
		t.Errorf("huge CRD: action %q, want created", a)
	}
	if a := rep.action(ns + "/HugeThing.e2e.kfdeploy.dev/one"); a != "created" {
		t.Errorf("custom resource of the huge CRD: action %q, want created", a)
	}
	t.Cleanup(func() {
		e.run(t, appDir, "delete", "--purge", "--yes")
	})
	again := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if again.Counts["created"]+again.Counts["configured"] != 0 {
		t.Errorf("re-apply of the huge CRD changed something: %v", again.Counts)
	}
}

func TestConcurrentAppliesDoNotInterleave(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	// No PV: the first apply holds the lock while it waits for the claim that cannot bind.
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "1Gi"})
	e.mustRun(t, appDir, "generate")

	first := e.start(t, appDir, "apply", "--skip-preflight", "--timeout", "20s")
	first.waitFor(t, "ready:", time.Minute)
	second := e.run(t, appDir, "apply", "--skip-preflight", "--timeout", "20s")
	if second.code == 0 || !strings.Contains(second.stderr, "another kfdeploy run") {
		t.Errorf("second concurrent apply: exit %d, want a refusal naming the other run:\n%s", second.code, second.stderr)
	}
	code, _, stderr := first.wait(t)
	if code == 0 {
		t.Fatal("first apply succeeded although its PVC cannot bind")
	}
	// The timeout names what is not ready and why.
	if !strings.Contains(stderr, ns+"/PersistentVolumeClaim/jupyter-data") {
		t.Errorf("timeout does not name the unbound claim:\n%s", stderr)
	}
	if !strings.Contains(stderr, ns+"/Deployment.apps/jupyter") || !strings.Contains(stderr, "unbound") {
		t.Errorf("timeout does not explain the pending pod:\n%s", stderr)
	}
	// The lock was released: the next run proceeds.
	e.createPV(t, ns+"-pv", "1Gi")
	e.mustRun(t, appDir, "apply", "--skip-preflight")
}

func TestInterruptedApplyConverges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	const n = 600
	writeYAMLComponent(t, appDir, "many", configMaps(ns, n))
	e.mustRun(t, appDir, "generate")
	run := e.start(t, appDir, "apply", "--skip-preflight", "--concurrency", "2")
	run.waitFor(t, "applying configuration", time.Minute)
	if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run.wait(t)
	if code == 0 {
		t.Fatal("interrupted apply exited 0")
	}
	if !strings.Contains(stderr, "interrupted") {
		t.Errorf("interrupted apply does not say so:\n%s", stderr)
	}
	cms, err := e.kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/app=app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) >= n {
		t.Logf("the interrupt came after all %d ConfigMaps were written", n)
	}
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "--skip-preflight", "-o", "json"))
	if rep.Counts["failed"] != 0 {
		t.Fatalf("re-apply failed: %v", rep.Counts)
	}
	cms, err = e.kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/app=app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != n {
		t.Errorf("after the converging apply: %d ConfigMaps, want %d", len(cms.Items), n)
	}
}

func TestAPIServerRestartDuringApply(t *testing.T) {
	script := os.Getenv("KFDEPLOY_TESTCLUSTER")
	if script == "" {
		t.Fatal("KFDEPLOY_TESTCLUSTER must name scripts/testcluster.sh: run with 'make e2e'")
	}
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	const n = 800
	writeYAMLComponent(t, appDir, "many", configMaps(ns, n))
	e.mustRun(t, appDir, "generate")
	run := e.start(t, appDir, "apply", "--skip-preflight", "--concurrency", "2", "-o", "json")
	run.waitFor(t, "applying configuration", time.Minute)
	select {
	case <-run.done:
		t.Fatal("apply finished before the API server was restarted: the test proves nothing; make the app bigger")
	default:
	}
	restart := exec.Command(script, "restart-apiserver")
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("restart the API server: %v\n%s", err, out)
	}
	code, stdout, stderr := run.wait(t)
	if code != 0 {
		// Allowed only with a clear message, never a stack trace.
		if strings.Contains(stderr, "goroutine ") || !strings.HasPrefix(stderr, "error: ") && !strings.Contains(stderr, "\nerror: ") {
			t.Fatalf("apply across an API server restart failed without a clear message:\n%s", stderr)
		}
		t.Logf("apply failed clearly across the restart; re-applying")
		e.mustRun(t, appDir, "apply", "--skip-preflight")
	} else if rep := parseReport(t, result{stdout: stdout}); rep.Counts["failed"] != 0 {
		t.Errorf("apply across the restart reported failures: %v", rep.Counts)
	}
	cms, err := e.kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "kfdeploy.dev/app=app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != n {
		t.Errorf("%d ConfigMaps after the restart, want %d", len(cms.Items), n)
	}
}

// started is a kfdeploy process running in the background.
type started struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
}

func (e *env) start(t *testing.T, dir string, args ...string) *started {
	t.Helper()
	s := &started{lines: make(chan string, 4096), done: make(chan struct{})}
	s.cmd = exec.Command(e.bin, args...)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	s.cmd.Stdout = &lockedWriter{mu: &s.mu, w: &s.stdout}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			select {
			case s.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	return s
}

// waitFor blocks until the process prints text: progress goes to stdout, or to stderr with -o json.
func (s *started) waitFor(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		found := strings.Contains(s.stdout.String(), text) || strings.Contains(s.stderr.String(), text)
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("kfdeploy did not print %q within %s", text, timeout)
		case <-s.done:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("kfdeploy exited before printing %q:\n%s\n%s", text, s.stdout.String(), s.stderr.String())
		case <-s.lines:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *started) wait(t *testing.T) (int, string, string) {
	t.Helper()
	err := s.cmd.Wait()
	<-s.done
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("background kfdeploy → exit %d\nstdout:\n%s\nstderr:\n%s", code, s.stdout.String(), s.stderr.String())
	return code, s.stdout.String(), s.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
