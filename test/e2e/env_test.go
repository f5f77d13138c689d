//go:build e2e

// Package e2e drives the built kfdeploy binary against the local simulated cluster
// (scripts/testcluster.sh): KFDEPLOY_BIN names the binary, KUBECONFIG the cluster.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

type env struct {
	bin        string
	kubeconfig string
	kube       kubernetes.Interface
	dyn        dynamic.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bin, kubeconfig := os.Getenv("KFDEPLOY_BIN"), os.Getenv("KUBECONFIG")
	if bin == "" || kubeconfig == "" {
		t.Fatal("KFDEPLOY_BIN and KUBECONFIG must be set: run the end-to-end tests with 'make e2e'")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	return &env{bin: bin, kubeconfig: kubeconfig, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
}

// util is the same cluster and binary for the helpers shared with test/conformance.
func (e *env) util() *e2eutil.Env {
	cfg, _ := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	return &e2eutil.Env{Bin: e.bin, Kubeconfig: e.kubeconfig, Rest: cfg, Kube: e.kube, Dyn: e.dyn}
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes kfdeploy in dir; it never fails the test by itself.
func (e *env) run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := e.util().Run(t, dir, args...)
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

// mustRun executes kfdeploy and fails the test on a non-zero exit.
func (e *env) mustRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := e.run(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("kfdeploy %v failed with exit %d: %s", args, r.code, r.stderr)
	}
	return r
}

// runReport is the -o json document of apply and delete.
type runReport struct {
	Counts  map[string]int `json:"counts"`
	Objects []struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Detail string `json:"detail"`
	} `json:"objects"`
	// Goes: what delete --purge names as going with the CRDs and namespaces it deletes.
	Goes []struct {
		Holder    string   `json:"holder"`
		Kind      string   `json:"kind"`
		Namespace string   `json:"namespace"`
		Count     int      `json:"count"`
		Names     []string `json:"names"`
	} `json:"goes"`
	Error string `json:"error"`
}

func parseReport(t *testing.T, r result) runReport {
	t.Helper()
	var rep runReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("parse -o json output: %v\n%s", err, r.stdout)
	}
	return rep
}

func (r runReport) action(id string) string {
	a, _ := r.object(id)
	return a
}

// object is the action and detail reported for id ("" when it is not reported).
func (r runReport) object(id string) (action, detail string) {
	for _, o := range r.Objects {
		if o.ID == id {
			return o.Action, o.Detail
		}
	}
	return "", ""
}

// uniqueName returns prefix-<random>, so tests never collide with leftovers of earlier runs.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newApp runs init in a temporary directory and returns the app directory and namespace.
func (e *env) newApp(t *testing.T, args ...string) (string, string) {
	t.Helper()
	ns := uniqueName("e2e")
	root := t.TempDir()
	e.mustRun(t, root, append([]string{"init", "app", "--platform", "none", "--namespace", ns}, args...)...)
	return filepath.Join(root, "app"), ns
}

// setParams rewrites app.yaml with params for a component.
func setParams(t *testing.T, appDir, component string, params map[string]any) {
	t.Helper()
	app, err := config.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range app.Spec.Components {
		if app.Spec.Components[i].Name == component {
			if app.Spec.Components[i].Params == nil {
				app.Spec.Components[i].Params = map[string]any{}
			}
			for k, v := range params {
				app.Spec.Components[i].Params[k] = v
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("app has no component %s", component)
	}
	data, err := app.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(appDir, config.FileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// createPV creates a PersistentVolume without a StorageClass, as an operator would by hand,
// and deletes it when the test ends.
func (e *env) createPV(t *testing.T, name, size string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PV %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// cleanupNamespace removes a test namespace at the end, whatever the test left.
func (e *env) cleanupNamespace(t *testing.T, ns string) {
	t.Cleanup(func() {
		_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

// eventually polls cond until it holds or the timeout passes; tests wait for the cluster's
// controllers this way, never by sleeping a fixed time.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, cond)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

func isGone(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}
