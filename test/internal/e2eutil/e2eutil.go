// Package e2eutil holds what the end-to-end (test/e2e) and conformance
// (test/conformance) tests share: running the built kfdeploy binary against
// the local cluster, and preparing an app of the full preset with
// PersistentVolumes for its claims.
package e2eutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// Env is the built binary (KFDEPLOY_BIN) and the local cluster (KUBECONFIG).
type Env struct {
	Bin        string
	Kubeconfig string
	Rest       *rest.Config
	Kube       kubernetes.Interface
	Dyn        dynamic.Interface
}

// NewEnv reads KFDEPLOY_BIN and KUBECONFIG; it fails the test (with how to run
// it) when either is missing.
func NewEnv(t testing.TB, how string) *Env {
	t.Helper()
	bin, kubeconfig := os.Getenv("KFDEPLOY_BIN"), os.Getenv("KUBECONFIG")
	if bin == "" || kubeconfig == "" {
		t.Fatalf("KFDEPLOY_BIN and KUBECONFIG must be set: run these tests with '%s'", how)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", kubeconfig, err)
	}
	return &Env{Bin: bin, Kubeconfig: kubeconfig, Rest: cfg,
		Kube: kubernetes.NewForConfigOrDie(cfg), Dyn: dynamic.NewForConfigOrDie(cfg)}
}

// Result is one kfdeploy run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run executes kfdeploy in dir; it never fails the test by itself.
func (e *Env) Run(t testing.TB, dir string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run kfdeploy %v: %v", args, err)
	}
	t.Logf("kfdeploy %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// MustRun executes kfdeploy and fails the test on a non-zero exit.
func (e *Env) MustRun(t testing.TB, dir string, args ...string) Result {
	t.Helper()
	r := e.Run(t, dir, args...)
	if r.Code != 0 {
		t.Fatalf("kfdeploy %v failed with exit %d: %s", args, r.Code, r.Stderr)
	}
	return r
}

// UniqueName returns prefix-<random>, so tests never collide with leftovers
// of earlier runs.
func UniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// NewApp runs init in a temporary directory, with a namespace named
// prefix-<random>, and returns the app directory and namespace.
func (e *Env) NewApp(t testing.TB, prefix string, args ...string) (string, string) {
	t.Helper()
	ns := UniqueName(prefix)
	root := t.TempDir()
	e.MustRun(t, root, append([]string{"init", "app", "--platform", "none", "--namespace", ns}, args...)...)
	return filepath.Join(root, "app"), ns
}

// CleanupNamespace removes a test namespace at the end, whatever the test left.
func (e *Env) CleanupNamespace(t testing.TB, ns string) {
	t.Cleanup(func() {
		_ = e.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

// Eventually polls cond until it holds or the timeout passes; tests wait for
// the cluster's controllers this way, never by sleeping a fixed time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, cond)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// DecodeManifestDir reads every manifests/*.yaml file of dir.
func DecodeManifestDir(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := manifest.Decode(f, data)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	if len(objs) == 0 {
		t.Fatalf("no objects in %s", dir)
	}
	return objs
}

// ObjectsOfKind filters objs by API group and kind.
func ObjectsOfKind(objs []*unstructured.Unstructured, group, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if gvk := o.GroupVersionKind(); gvk.Group == group && gvk.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// FromUnstructured converts o into a typed object.
func FromUnstructured(t testing.TB, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatalf("convert %s: %v", manifest.IDOf(o), err)
	}
}

// PVClaim is a claim the app will create: a PersistentVolumeClaim of the
// manifests or one made from a StatefulSet's volumeClaimTemplates.
type PVClaim struct {
	Namespace, Name string
	Spec            corev1.PersistentVolumeClaimSpec
}

// AppClaims lists the claims objs will create (defaultNS for objects without
// a namespace).
func AppClaims(t testing.TB, objs []*unstructured.Unstructured, defaultNS string) []PVClaim {
	t.Helper()
	nsOf := func(o *unstructured.Unstructured) string {
		if o.GetNamespace() != "" {
			return o.GetNamespace()
		}
		return defaultNS
	}
	var claims []PVClaim
	for _, o := range ObjectsOfKind(objs, "", "PersistentVolumeClaim") {
		var pvc corev1.PersistentVolumeClaim
		FromUnstructured(t, o, &pvc)
		claims = append(claims, PVClaim{Namespace: nsOf(o), Name: pvc.Name, Spec: pvc.Spec})
	}
	for _, o := range ObjectsOfKind(objs, "apps", "StatefulSet") {
		var sts appsv1.StatefulSet
		FromUnstructured(t, o, &sts)
		replicas := 1
		if sts.Spec.Replicas != nil {
			replicas = int(*sts.Spec.Replicas)
		}
		for _, tmpl := range sts.Spec.VolumeClaimTemplates {
			for i := 0; i < replicas; i++ {
				claims = append(claims, PVClaim{Namespace: nsOf(o), Name: fmt.Sprintf("%s-%s-%d", tmpl.Name, sts.Name, i), Spec: tmpl.Spec})
			}
		}
	}
	return claims
}

// CreateReservedPV creates a class-less hostPath PV of the claim's size,
// access modes and volume mode, reserved for the claim by claimRef (so that
// on the shared cluster no other test's claim takes it), and deletes it when
// the test ends. Nothing mounts it: pods are simulated.
func (e *Env) CreateReservedPV(t testing.TB, c PVClaim) string {
	t.Helper()
	name := c.Namespace + "-" + c.Name
	modes := c.Spec.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	size, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		t.Fatalf("claim %s/%s requests no storage", c.Namespace, c.Name)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   modes,
			VolumeMode:                    c.Spec.VolumeMode,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
	if _, err := e.Kube.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PV %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	t.Logf("PV %s: %s %v, reserved for %s/%s", name, size.String(), modes, c.Namespace, c.Name)
	return name
}

// FullPresetParams are the params an app of the full preset needs on the
// local cluster: claims bind to pre-created PVs (no StorageClass), the NFS
// provisioner gets placeholder values (its pod is simulated), and the
// cluster-scoped StorageClass gets a per-app name.
func FullPresetParams(ns string) [][3]string {
	return [][3]string{
		{"jupyterhub", "storageClass", `""`},
		{"katib", "storageClass", `""`},
		{"modeldb", "storageClass", `""`},
		{"nfs-provisioner", "server", "nfs.e2e.invalid"},
		{"nfs-provisioner", "path", "/exports/kubeflow"},
		{"nfs-provisioner", "storageClassName", ns + "-nfs"},
	}
}

// FullApp is an app of the full preset, generated, with one reserved PV per
// claim; not applied yet.
type FullApp struct {
	Dir, Namespace string
	Objects        []*unstructured.Unstructured
	// PVs maps claim name to PV name.
	PVs map[string]string
}

// NewFullApp inits an app of the full preset in namespace prefix-<random>,
// sets FullPresetParams, generates it and creates the PVs. The namespace is
// deleted when the test ends, and the app's cluster-scoped objects too
// (delete --purge) if the test failed.
func (e *Env) NewFullApp(t testing.TB, prefix string) *FullApp {
	t.Helper()
	dir, ns := e.NewApp(t, prefix, "--preset", "full")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() {
		if t.Failed() {
			e.Run(t, dir, "delete", "--purge", "--yes")
		}
	})
	for _, p := range FullPresetParams(ns) {
		e.MustRun(t, dir, "param", "set", p[0], p[1], p[2])
	}
	e.MustRun(t, dir, "generate")
	objs := DecodeManifestDir(t, filepath.Join(dir, "manifests"))
	app := &FullApp{Dir: dir, Namespace: ns, Objects: objs, PVs: map[string]string{}}
	for _, c := range AppClaims(t, objs, ns) {
		if c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != "" {
			t.Fatalf("claim %s/%s has storageClassName %v, want \"\": set the component's storageClass param to '\"\"'", c.Namespace, c.Name, c.Spec.StorageClassName)
		}
		app.PVs[c.Name] = e.CreateReservedPV(t, c)
	}
	return app
}
