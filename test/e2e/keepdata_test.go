//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// What the issue "keep what users made" asks of delete and prune: CRDs are data, shared CRDs
// stay while another app lists them, objects another app owns are refused, and a namespace
// that holds users' objects is not deleted without --purge.

var workflowGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}

const workflowsCRD = "workflows.argoproj.io"

// prefixedApp inits an app of components with its namespace prefixed by prefix; at the end it
// is purged and its namespace removed.
func (e *env) prefixedApp(t *testing.T, prefix, components string) (string, string) {
	t.Helper()
	ns := uniqueName(prefix)
	root := t.TempDir()
	e.mustRun(t, root, "init", "app", "--platform", "none", "--namespace", ns, "--components", components)
	appDir := filepath.Join(root, "app")
	e.cleanupNamespace(t, ns)
	t.Cleanup(func() { e.run(t, appDir, "delete", "--purge", "--yes") })
	return appDir, ns
}

// argoApp inits, generates and applies an app of core and argo (see prefixedApp).
func (e *env) argoApp(t *testing.T, prefix string) (string, string) {
	t.Helper()
	appDir, ns := e.prefixedApp(t, prefix, "core,argo")
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply", "--timeout", "4m")
	return appDir, ns
}

// userWorkflow creates, in a namespace of its own (a user's), the sample Workflow.
func (e *env) userWorkflow(t *testing.T, prefix string) (ns, name string) {
	t.Helper()
	ctx := context.Background()
	ns = uniqueName(prefix)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.cleanupNamespace(t, ns)
	wf := sampleObject(t, "workflow-dag-outputs-valid.yaml")
	wf.SetNamespace(ns)
	wf.SetGenerateName("")
	wf.SetName("users-work")
	if _, err := e.dyn.Resource(workflowGVR).Namespace(ns).Create(ctx, wf, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the user's Workflow: %v", err)
	}
	return ns, wf.GetName()
}

// sampleObject reads the first object of a sample of pkg/render/testdata/samples.
func sampleObject(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	file := filepath.Join(fullSamplesDir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs[0]
}

func (e *env) workflowExists(t *testing.T, ns, name string) bool {
	t.Helper()
	_, err := e.dyn.Resource(workflowGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func (e *env) crdExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := e.dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func crdResultID(name string) string { return "CustomResourceDefinition.apiextensions.k8s.io/" + name }

// TestPruneKeepsCRDWithUsersWorkflow: argo removed from app.yaml, generate, apply: the CRD that
// holds a user's Workflow (in another namespace) is kept and reported with the command that
// removes it; the Workflow stays; an empty CRD of argo is pruned.
func TestPruneKeepsCRDWithUsersWorkflow(t *testing.T) {
	e := newEnv(t)
	appDir, _ := e.argoApp(t, "e2e-prune")
	userNS, wf := e.userWorkflow(t, "alice")

	yaml, err := os.ReadFile(filepath.Join(appDir, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(yaml), "    - name: argo\n", "", 1)
	if without == string(yaml) {
		t.Fatalf("app.yaml lists no argo component:\n%s", yaml)
	}
	if err := os.WriteFile(filepath.Join(appDir, "app.yaml"), []byte(without), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, appDir, "generate")
	rep := parseReport(t, e.mustRun(t, appDir, "apply", "-o", "json"))

	id := crdResultID(workflowsCRD)
	if a, d := rep.object(id); a != "kept" || !strings.Contains(d, "1 Workflow in 1 namespace") ||
		!strings.Contains(d, "kubectl delete customresourcedefinition "+workflowsCRD) {
		t.Errorf("apply without argo: %s %q (%s); want kept, saying it holds 1 Workflow in 1 namespace and the command that removes it", id, a, d)
	}
	if !e.crdExists(t, workflowsCRD) || !e.workflowExists(t, userNS, wf) {
		t.Errorf("apply without argo removed the CRD or the user's Workflow %s/%s", userNS, wf)
	}
	if a := rep.action(crdResultID("cronworkflows.argoproj.io")); a != "pruned" {
		t.Errorf("apply without argo: the empty CRD cronworkflows.argoproj.io %q, want pruned", a)
	}
}

// TestDeleteKeepsCRDsUnlessPurge: delete keeps the CRDs and says what they hold; delete --purge
// --yes names the user's Workflow that goes with them, then removes both.
func TestDeleteKeepsCRDsUnlessPurge(t *testing.T) {
	e := newEnv(t)
	appDir, ns := e.argoApp(t, "e2e-crd")
	userNS, wf := e.userWorkflow(t, "bob")
	id := crdResultID(workflowsCRD)

	del := parseReport(t, e.mustRun(t, appDir, "delete", "-o", "json"))
	if a, d := del.object(id); a != "kept" || !strings.Contains(d, "holds 1 Workflow in 1 namespace") {
		t.Errorf("delete: %s %q (%s); want kept, holding 1 Workflow in 1 namespace", id, a, d)
	}
	if a := del.action(ns + "/Deployment.apps/workflow-controller"); a != "deleted" {
		t.Errorf("delete: the workflow controller %q, want deleted", a)
	}
	if !e.crdExists(t, workflowsCRD) || !e.workflowExists(t, userNS, wf) {
		t.Fatalf("delete without --purge removed the CRD or the user's Workflow %s/%s", userNS, wf)
	}

	purge := parseReport(t, e.mustRun(t, appDir, "delete", "--purge", "--yes", "-o", "json"))
	named := false
	for _, g := range purge.Goes {
		if g.Kind == "Workflow.argoproj.io" && g.Namespace == userNS && g.Count == 1 && len(g.Names) == 1 && g.Names[0] == wf {
			named = true
		}
	}
	if !named {
		t.Errorf("delete --purge does not name the Workflow %s/%s that goes: %+v", userNS, wf, purge.Goes)
	}
	if a := purge.action(id); a != "deleted" {
		t.Errorf("delete --purge: %s %q, want deleted", id, a)
	}
	eventually(t, 2*time.Minute, "the CRD and the Workflow gone", func(context.Context) (bool, error) {
		return !e.crdExists(t, workflowsCRD) && !e.workflowExists(t, userNS, wf), nil
	})
}

// TestTwoAppsShareArgoCRDs: two apps (namespaces x1-…, y1-…) both with argo share its CRDs;
// whichever is deleted first with --purge, the CRDs and a user's Workflow stay for the other,
// and the second delete --purge removes them.
func TestTwoAppsShareArgoCRDs(t *testing.T) {
	e := newEnv(t)
	for _, order := range []string{"x1 first", "y1 first"} {
		t.Run(order, func(t *testing.T) {
			xDir, xNS := e.argoApp(t, "x1")
			yDir, yNS := e.argoApp(t, "y1")
			ctx := context.Background()
			crd, err := e.dyn.Resource(crdGVR).Get(ctx, workflowsCRD, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			xID := e.applySetID(t, ctx, xNS)
			if got := crd.GetLabels()[labelPartOf]; got != xID {
				t.Errorf("after the second app's apply, %s is part of %q, want still the first app's set %q", workflowsCRD, got, xID)
			}
			userNS, wf := e.userWorkflow(t, "carol")

			first, second, firstNS, secondNS := xDir, yDir, xNS, yNS
			if order == "y1 first" {
				first, second, firstNS, secondNS = yDir, xDir, yNS, xNS
			}
			del := parseReport(t, e.mustRun(t, first, "delete", "--purge", "--yes", "-o", "json"))
			id := crdResultID(workflowsCRD)
			if a, d := del.object(id); a != "kept" || !strings.Contains(d, "namespace "+secondNS) {
				t.Errorf("purge of the app in %s: %s %q (%s); want kept, shared with the app in %s", firstNS, id, a, d, secondNS)
			}
			if !e.crdExists(t, workflowsCRD) || !e.workflowExists(t, userNS, wf) {
				t.Fatalf("purge of the app in %s removed the CRD the app in %s uses, or the user's Workflow", firstNS, secondNS)
			}
			// The remaining app still applies cleanly and then purges the CRDs.
			e.mustRun(t, second, "apply")
			del = parseReport(t, e.mustRun(t, second, "delete", "--purge", "--yes", "-o", "json"))
			if a := del.action(id); a != "deleted" {
				t.Errorf("purge of the last app (%s): %s %q, want deleted", secondNS, id, a)
			}
			eventually(t, 2*time.Minute, "the CRD gone with the last app", func(context.Context) (bool, error) {
				return !e.crdExists(t, workflowsCRD), nil
			})
		})
	}
}

// TestSecondAppRefusedOnKatibWebhooks: a second app with katib meets the first app's fixed-name
// webhook configurations: its preflight fails naming the first app, apply without preflight
// refuses as well, and the webhooks stay the first app's.
func TestSecondAppRefusedOnKatibWebhooks(t *testing.T) {
	e := newEnv(t)
	var dirs, nss []string
	for _, prefix := range []string{"x1", "y1"} {
		dir, ns := e.prefixedApp(t, prefix, "core,katib")
		e.mustRun(t, dir, "param", "set", "katib", "storageClass", `""`)
		e.mustRun(t, dir, "param", "set", "katib", "webhookFailurePolicy", "Ignore")
		e.mustRun(t, dir, "generate")
		dirs, nss = append(dirs, dir), append(nss, ns)
	}
	e.mustRun(t, dirs[0], "apply", "--wait=false", "--skip-preflight")

	owner := "app app in namespace " + nss[0]
	pre := e.run(t, dirs[1], "preflight")
	if pre.code == 0 {
		t.Errorf("preflight of the second app passed; want it to fail on the first app's webhook configurations")
	}
	for _, want := range []string{
		"ValidatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org belongs to kfdeploy " + owner,
		"MutatingWebhookConfiguration.admissionregistration.k8s.io/katib.kubeflow.org belongs to kfdeploy " + owner,
	} {
		if !strings.Contains(pre.stdout+pre.stderr, want) {
			t.Errorf("preflight of the second app does not say %q", want)
		}
	}
	ap := e.run(t, dirs[1], "apply", "--wait=false", "--skip-preflight")
	if ap.code == 0 || !strings.Contains(ap.stderr, "belongs to kfdeploy "+owner) {
		t.Errorf("apply --skip-preflight of the second app: exit %d, stderr %q; want a refusal naming %s", ap.code, ap.stderr, owner)
	}
	wh, err := e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "katib.kubeflow.org", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := wh.Labels[labelPartOf], e.applySetID(t, context.Background(), nss[0]); got != want {
		t.Errorf("the webhook configuration moved to set %q, want the first app's %q", got, want)
	}
}

// TestDeleteKeepsNamespaceWithUsersClaim: a user's notebook claim in the app's namespace keeps
// the namespace on delete, named; delete --purge names it, then removes both.
func TestDeleteKeepsNamespaceWithUsersClaim(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply")
	empty := ""
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim-alice", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &empty,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	del := parseReport(t, e.mustRun(t, appDir, "delete", "-o", "json"))
	nsID := "Namespace/" + ns
	if a, d := del.object(nsID); a != "kept" || !strings.Contains(d, "claim-alice") {
		t.Errorf("delete: %s %q (%s); want kept, naming claim-alice", nsID, a, d)
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "claim-alice", metav1.GetOptions{}); err != nil {
		t.Fatalf("delete without --purge: the user's claim: %v", err)
	}
	if live, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || live.DeletionTimestamp != nil {
		t.Fatalf("delete without --purge: namespace %s: %v (deleting: %v)", ns, err, live != nil && live.DeletionTimestamp != nil)
	}

	purge := parseReport(t, e.mustRun(t, appDir, "delete", "--purge", "--yes", "-o", "json"))
	named := false
	for _, g := range purge.Goes {
		if g.Kind == "PersistentVolumeClaim" && g.Namespace == ns && len(g.Names) == 1 && g.Names[0] == "claim-alice" {
			named = true
		}
	}
	if !named {
		t.Errorf("delete --purge does not name the claim that goes with namespace %s: %+v", ns, purge.Goes)
	}
	eventually(t, 2*time.Minute, "namespace "+ns+" deleted", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
}
