//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// preflightReport is the -o json document of preflight (schema: pkg/preflight's doc comment).
type preflightReport struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	Passed    bool   `json:"passed"`
	Checks    []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Finding string `json:"finding"`
		Remedy  string `json:"remedy"`
	} `json:"checks"`
	Summary struct {
		OK   int `json:"ok"`
		Warn int `json:"warn"`
		Fail int `json:"fail"`
	} `json:"summary"`
	CreatedVolumes []struct {
		Name             string   `json:"name"`
		Claim            string   `json:"claim"`
		Server           string   `json:"server"`
		Path             string   `json:"path"`
		Capacity         string   `json:"capacity"`
		AccessModes      []string `json:"accessModes"`
		StorageClassName string   `json:"storageClassName"`
	} `json:"createdVolumes"`
}

func parsePreflight(t *testing.T, r result) preflightReport {
	t.Helper()
	var rep preflightReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("parse preflight -o json: %v\n%s", err, r.stdout)
	}
	if len(rep.Checks) == 0 || rep.CreatedVolumes == nil {
		t.Fatalf("preflight JSON lacks checks or createdVolumes:\n%s", r.stdout)
	}
	return rep
}

// findings returns "status: finding" of one check.
func (r preflightReport) findings(check string) []string {
	var out []string
	for _, c := range r.Checks {
		if c.Name == check {
			out = append(out, c.Status+": "+c.Finding)
		}
	}
	return out
}

// has reports whether a finding of the check has the status and contains every part.
func (r preflightReport) has(check, status string, parts ...string) bool {
	for _, c := range r.Checks {
		if c.Name != check || c.Status != status {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(c.Finding, p)
		}
		if all {
			return true
		}
	}
	return false
}

// wantExit fails the test unless kfdeploy exited with code.
func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// createNode creates a temporary Node (kwok keeps it Ready), sets its status with the given
// allocatable resources, and deletes it when the test ends.
func (e *env) createNode(t *testing.T, name string, labels map[string]string, taints []corev1.Taint, allocatable corev1.ResourceList) {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}},
		Spec:       corev1.NodeSpec{Taints: taints},
	}
	if _, err := e.kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	// Only the status subresource persists capacity; kwok initialises the status concurrently,
	// so write until the read-back shows ours.
	eventually(t, time.Minute, "status of node "+name, func(ctx context.Context) (bool, error) {
		live, err := e.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sameResources(live.Status.Allocatable, allocatable) && len(live.Status.Addresses) > 0 {
			return true, nil
		}
		base := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
		for k, v := range allocatable {
			base[k] = v
		}
		live.Status.Capacity, live.Status.Allocatable = base, base
		live.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.77"}}
		_, err = e.kube.CoreV1().Nodes().UpdateStatus(ctx, live, metav1.UpdateOptions{})
		return false, client409(err)
	})
}

func sameResources(live, want corev1.ResourceList) bool {
	for k, v := range want {
		if q, ok := live[k]; !ok || q.Cmp(v) != 0 {
			return false
		}
	}
	return true
}

// client409 treats a write conflict as "try again".
func client409(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// TestPreflightAllOK: on the seed topology, with the notebook's PV provided, every check is ok.
func TestPreflightAllOK(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "2Gi", "gpus": 1})
	e.createPV(t, ns+"-data", "2Gi")
	e.mustRun(t, appDir, "generate")

	rep := parsePreflight(t, e.mustRun(t, appDir, "preflight", "-o", "json", "--strict"))
	if !rep.Passed || rep.Summary.Fail != 0 || rep.Summary.Warn != 0 || len(rep.CreatedVolumes) != 0 {
		t.Errorf("passed %v summary %+v created %d, want all ok", rep.Passed, rep.Summary, len(rep.CreatedVolumes))
	}
	for _, c := range rep.Checks {
		if c.Status != "ok" {
			t.Errorf("%s: %s %s (remedy: %s)", c.Name, c.Status, c.Finding, c.Remedy)
		}
	}
	var names []string
	for _, c := range rep.Checks {
		if len(names) == 0 || names[len(names)-1] != c.Name {
			names = append(names, c.Name)
		}
	}
	if got := strings.Join(names, ","); got != "cluster,apis,permissions,gpu,fit,storage,nfs,namespace,pull-secrets,upgrade" {
		t.Errorf("checks in order %s", got)
	}
	if !rep.has("storage", "ok", ns+"/jupyter-data", "will bind to Available PV "+ns+"-data") {
		t.Errorf("storage: %v", rep.findings("storage"))
	}
	if !rep.has("gpu", "ok", "the app requests 1 in 1 pods") {
		t.Errorf("gpu: %v", rep.findings("gpu"))
	}
	if !rep.has("cluster", "ok", "v1.37") {
		t.Errorf("cluster: %v", rep.findings("cluster"))
	}

	text := e.mustRun(t, appDir, "preflight")
	if !strings.Contains(text.stdout, "CHECK") || !strings.Contains(text.stdout, "preflight passed") {
		t.Errorf("table output:\n%s", text.stdout)
	}
}

// TestPreflightNFS: a claim without a PV fails and is named; --nfs-server creates the PV the v0.3
// guide wrote by hand, once; apply binds the claim to it, and preflight passes.
func TestPreflightNFS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "3Gi", "gpus": 0})
	e.mustRun(t, appDir, "generate")
	pvName := "kfdeploy-" + ns + "-jupyter-data"
	t.Cleanup(func() {
		_ = e.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})

	r := e.run(t, appDir, "preflight", "-o", "json")
	wantExit(t, r, 1)
	rep := parsePreflight(t, r)
	if rep.Passed || !rep.has("storage", "fail", ns+"/jupyter-data needs 3Gi ReadWriteOnce", "no Available PV matches") {
		t.Errorf("storage: %v", rep.findings("storage"))
	}

	// Nothing listens on 127.0.0.1:2049 here: a warning, not a failure.
	nfsArgs := []string{"--nfs-server", "127.0.0.1", "--nfs-path", "/nfs-data"}
	rep = parsePreflight(t, e.mustRun(t, appDir, append([]string{"preflight", "-o", "json"}, nfsArgs...)...))
	if len(rep.CreatedVolumes) != 1 {
		t.Fatalf("createdVolumes %+v, want one", rep.CreatedVolumes)
	}
	v := rep.CreatedVolumes[0]
	if v.Name != pvName || v.Claim != ns+"/jupyter-data" || v.Path != "/nfs-data/"+ns+"-jupyter-data" || v.Capacity != "3Gi" {
		t.Errorf("created volume %+v", v)
	}
	if !rep.has("nfs", "warn", "127.0.0.1:2049") || !rep.has("nfs", "ok", "created PV "+pvName) {
		t.Errorf("nfs: %v", rep.findings("nfs"))
	}
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.NFS == nil || pv.Spec.NFS.Server != "127.0.0.1" || pv.Spec.NFS.Path != v.Path ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.StorageClassName != "" ||
		pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != ns || pv.Spec.ClaimRef.Name != "jupyter-data" {
		t.Errorf("PV spec %+v", pv.Spec)
	}
	if pv.Labels[inventory.LabelApp] != "app" || pv.Labels["app.kubernetes.io/managed-by"] != "kfdeploy" || pv.Labels[inventory.LabelPartOf] != "" {
		t.Errorf("PV labels %v: want kfdeploy's labels and no ApplySet part-of label", pv.Labels)
	}

	// Again: nothing is created twice.
	rep = parsePreflight(t, e.mustRun(t, appDir, append([]string{"preflight", "-o", "json"}, nfsArgs...)...))
	if len(rep.CreatedVolumes) != 0 || !rep.has("storage", "ok", "will bind to PV "+pvName+", reserved for it") {
		t.Errorf("second run: created %+v, storage %v", rep.CreatedVolumes, rep.findings("storage"))
	}

	parseReport(t, e.mustRun(t, appDir, append([]string{"apply", "-o", "json", "--timeout", "3m"}, nfsArgs...)...))
	eventually(t, time.Minute, "claim bound to the NFS PV", func(ctx context.Context) (bool, error) {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "jupyter-data", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == pvName, nil
	})
	rep = parsePreflight(t, e.mustRun(t, appDir, "preflight", "-o", "json"))
	if !rep.Passed || !rep.has("storage", "ok", ns+"/jupyter-data is Bound to PV "+pvName) {
		t.Errorf("after apply: passed %v, storage %v", rep.Passed, rep.findings("storage"))
	}
	e.mustRun(t, appDir, "delete", "--purge", "--yes")
}

// TestPreflightGPUDemandTooLarge: a notebook asking for more GPUs than any node has fails the
// gpu check, and apply stops before writing anything.
func TestPreflightGPUDemandTooLarge(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	setParams(t, appDir, "jupyter", map[string]any{"storageClass": "", "storageSize": "1Gi", "gpus": 2})
	e.mustRun(t, appDir, "generate")

	r := e.run(t, appDir, "preflight", "-o", "json")
	wantExit(t, r, 1)
	rep := parsePreflight(t, r)
	if !rep.has("gpu", "fail", "a pod of "+ns+"/Deployment.apps/jupyter requests 2 nvidia.com/gpu", "the most free on one schedulable node is") {
		t.Errorf("gpu: %v", rep.findings("gpu"))
	}

	e.wantApplyRefused(t, appDir, ns)
}

// wantApplyRefused: apply fails on its preflight and writes nothing (not even the namespace).
func (e *env) wantApplyRefused(t *testing.T, appDir, ns string) {
	t.Helper()
	applied := e.run(t, appDir, "apply", "--timeout", "1m")
	if applied.code == 0 || !strings.Contains(applied.stderr, "preflight failed") {
		t.Fatalf("apply with a failed preflight: exit %d, stderr %s", applied.code, applied.stderr)
	}
	if _, err := e.kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("apply wrote objects after a failed preflight: namespace %s: %v", ns, err)
	}
}

// TestPreflightGPUNodeWithoutDevicePlugin: a node labelled as a GPU node that advertises no
// GPUs is a warning naming the node (a failure with --strict).
func TestPreflightGPUNodeWithoutDevicePlugin(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	node := uniqueName("e2e-nogpu")
	e.createNode(t, node, map[string]string{"nvidia.com/gpu.present": "true"}, nil,
		corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")})

	rep := parsePreflight(t, e.mustRun(t, appDir, "preflight", "-o", "json"))
	if !rep.Passed || !rep.has("gpu", "warn", node+" is labelled as a GPU node", "device plugin missing or unhealthy on "+node) {
		t.Errorf("passed %v, gpu: %v", rep.Passed, rep.findings("gpu"))
	}
	for _, c := range rep.Checks {
		if c.Name == "gpu" && strings.Contains(c.Finding, node) && !strings.Contains(c.Remedy, "nvidia-device-plugin") {
			t.Errorf("remedy %q does not name the nvidia-device-plugin component", c.Remedy)
		}
	}
	// Exit 1 for the warning itself, not for any error on the way there.
	strict := e.run(t, appDir, "preflight", "--strict")
	wantExit(t, strict, 1)
	if !strings.Contains(strict.stderr, "warnings (--strict)") {
		t.Errorf("preflight --strict failed for another reason than the warning:\n%s", strict.stderr)
	}
}

// TestPreflightPermissions: a user with a narrow Role (a ServiceAccount token) gets the exact
// list of missing permissions.
func TestPreflightPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core,jupyter")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig, token := e.narrowUser(t, ns, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "create", "patch", "delete"}},
	})

	r := e.run(t, appDir, "preflight", "-o", "json", "--kubeconfig", kubeconfig)
	wantExit(t, r, 1)
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Fatal("preflight printed the token")
	}
	rep := parsePreflight(t, r)
	for _, want := range []string{
		"cannot create, patch, delete services in namespace " + ns,
		"cannot get, list, create, patch, delete persistentvolumeclaims in namespace " + ns,
		"cannot get, create, patch, delete secrets in namespace " + ns,
		"cannot get, create, update, delete leases.coordination.k8s.io in namespace default",
		"cannot get, list, create, patch, delete namespaces cluster-wide",
	} {
		if !rep.has("permissions", "fail", want) {
			t.Errorf("permissions lack %q: %v", want, rep.findings("permissions"))
		}
	}
	for _, f := range rep.findings("permissions") {
		if strings.Contains(f, "deployments.apps") {
			t.Errorf("deployments are granted, yet: %s", f)
		}
	}
	if !rep.has("cluster", "ok") {
		t.Errorf("cluster: %v", rep.findings("cluster"))
	}
}

// narrowUser creates a ServiceAccount bound to a Role with rules in ns, and a kubeconfig that
// authenticates as it with a token from the TokenRequest API; it returns the file and the token.
func (e *env) narrowUser(t *testing.T, ns string, rules []rbacv1.PolicyRule) (string, string) {
	t.Helper()
	ctx := context.Background()
	const name = "e2e-narrow"
	if _, err := e.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := e.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	cfg.CurrentContext = name
	path := filepath.Join(t.TempDir(), "narrow.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path, tok.Status.Token
}

// TestPreflightTerminatingNamespace: a namespace held in Terminating by a finalizer fails the
// namespace check.
func TestPreflightTerminatingNamespace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.mustRun(t, appDir, "generate")
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const holder = "hold"
	if _, err := e.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: holder, Finalizers: []string{"kfdeploy.dev/e2e-hold"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Releasing the finalizer lets the namespace controller finish the deletion.
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = e.kube.CoreV1().ConfigMaps(ns).Patch(context.Background(), holder, types.MergePatchType, patch, metav1.PatchOptions{})
		_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	if err := e.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "namespace "+ns+" Terminating", func(ctx context.Context) (bool, error) {
		live, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err == nil && live.Status.Phase == corev1.NamespaceTerminating, err
	})

	r := e.run(t, appDir, "preflight", "-o", "json")
	wantExit(t, r, 1)
	rep := parsePreflight(t, r)
	if !rep.has("namespace", "fail", "namespace "+ns+" is Terminating") {
		t.Errorf("namespace: %v", rep.findings("namespace"))
	}
}

var topRow = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)$`)
var topSum = regexp.MustCompile(`Allocated/Total GPUs In Cluster: (\d+)/(\d+) \((\d+)%\)`)

type topLine struct {
	ip, role         string
	total, allocated int
}

// parseTop reads the rows of `top nodes` and checks that the cluster line sums them.
func parseTop(t *testing.T, out string) map[string]topLine {
	t.Helper()
	rows := map[string]topLine{}
	var total, allocated int
	for _, line := range strings.Split(out, "\n") {
		m := topRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || m[1] == "NAME" {
			continue
		}
		tot, _ := strconv.Atoi(m[4])
		alloc, _ := strconv.Atoi(m[5])
		rows[m[1]] = topLine{ip: m[2], role: m[3], total: tot, allocated: alloc}
		total += tot
		allocated += alloc
	}
	m := topSum.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no cluster line in:\n%s", out)
	}
	if m[1] != strconv.Itoa(allocated) || m[2] != strconv.Itoa(total) {
		t.Errorf("cluster line %q does not sum the rows (%d/%d)", m[0], allocated, total)
	}
	return rows
}

// TestTopNodes: per-node GPU totals and allocations match the pods with GPU requests, and the
// cluster line sums the rows; --watch prints a table each interval until interrupted.
func TestTopNodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := uniqueName("e2e-top")
	e.cleanupNamespace(t, ns)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A tainted node of our own: no other test's pods land on it, so its numbers are exact.
	node := uniqueName("e2e-top")
	taint := corev1.Taint{Key: "kfdeploy.dev/e2e-top", Value: node, Effect: corev1.TaintEffectNoSchedule}
	e.createNode(t, node, map[string]string{"node-role.kubernetes.io/worker": "", "nvidia.com/gpu.present": "true"},
		[]corev1.Taint{taint}, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("4")})

	pod := func(name, gpus string) {
		c := corev1.Container{Name: "c", Image: "busybox"}
		if gpus != "" {
			c.Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(gpus)}
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{
			NodeName: node, Containers: []corev1.Container{c},
			Tolerations: []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpExists}},
		}}
		if _, err := e.kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	// Pods go before their node (cleanups run last-in first-out): once the node is gone nobody
	// finishes their graceful deletion and the namespace waits for the pod garbage collector.
	t.Cleanup(func() {
		zero := int64(0)
		_ = e.kube.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	})
	pod("one", "1")
	pod("two", "2")
	pod("none", "")

	rows := parseTop(t, e.mustRun(t, t.TempDir(), "top", "nodes").stdout)
	if got := rows[node]; got != (topLine{ip: "192.0.2.77", role: "worker", total: 4, allocated: 3}) {
		t.Errorf("row of %s: %+v, want 192.0.2.77 worker 4 3", node, got)
	}
	if got := rows["k8s-m1"]; got.role != "control-plane" || got.total != 0 {
		t.Errorf("row of k8s-m1: %+v", got)
	}
	for _, g := range []string{"k8s-g1", "k8s-g2", "k8s-g3", "k8s-g11"} {
		if rows[g].total != 1 {
			t.Errorf("row of %s: %+v, want 1 GPU", g, rows[g])
		}
	}

	zero := int64(0)
	if err := e.kube.CoreV1().Pods(ns).Delete(ctx, "two", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "pod two gone", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Pods(ns).Get(ctx, "two", metav1.GetOptions{})
		return isGone(err)
	})
	rows = parseTop(t, e.mustRun(t, t.TempDir(), "top", "nodes").stdout)
	if rows[node].allocated != 1 {
		t.Errorf("after deleting the 2-GPU pod, row of %s: %+v, want 1 allocated", node, rows[node])
	}

	out := e.runUntilInterrupted(t, 3500*time.Millisecond, "top", "nodes", "--watch", "--interval", "1s")
	if n := strings.Count(out, "Allocated/Total GPUs In Cluster"); n < 2 {
		t.Errorf("--watch printed %d tables in 3.5s at a 1s interval:\n%s", n, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("--watch cleared the screen although stdout is not a terminal")
	}
}

// runUntilInterrupted runs kfdeploy for d, then sends it SIGINT; it must exit 0.
func (e *env) runUntilInterrupted(t *testing.T, d time.Duration, args ...string) string {
	t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("kfdeploy %v after SIGINT: %v\nstderr: %s", args, err, errOut.String())
	}
	return out.String()
}
