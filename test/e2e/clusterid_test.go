//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// kubeconfigB is the second local cluster of the identity guard's test (make e2e starts it).
const kubeconfigB = "KFDEPLOY_KUBECONFIG_B"

// twoClusters is cluster A (KUBECONFIG) and cluster B (KFDEPLOY_KUBECONFIG_B).
type twoClusters struct {
	a, b       *clientcmdapi.Config
	kubeB      kubernetes.Interface
	serverA    string
	serverB    string
	uidA, uidB string
}

func newTwoClusters(t *testing.T, e *env) *twoClusters {
	t.Helper()
	pathB := os.Getenv(kubeconfigB)
	if pathB == "" {
		t.Fatalf("%s must name the kubeconfig of a second local cluster: run the end-to-end tests with 'make e2e'", kubeconfigB)
	}
	tc := &twoClusters{}
	var err error
	if tc.a, err = clientcmd.LoadFromFile(e.kubeconfig); err != nil {
		t.Fatal(err)
	}
	if tc.b, err = clientcmd.LoadFromFile(pathB); err != nil {
		t.Fatal(err)
	}
	cfgB, err := clientcmd.BuildConfigFromFlags("", pathB)
	if err != nil {
		t.Fatal(err)
	}
	tc.kubeB = kubernetes.NewForConfigOrDie(cfgB)
	tc.serverA = tc.a.Clusters[tc.a.Contexts[tc.a.CurrentContext].Cluster].Server
	tc.serverB = tc.b.Clusters[tc.b.Contexts[tc.b.CurrentContext].Cluster].Server
	if tc.serverA == tc.serverB {
		t.Fatalf("KUBECONFIG and %s name the same server %s: start a second cluster", kubeconfigB, tc.serverA)
	}
	ctx := context.Background()
	nsA, err := e.kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := tc.kubeB.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tc.uidA, tc.uidB = string(nsA.UID), string(nsB.UID)
	return tc
}

// kubeconfig writes a kubeconfig whose contexts (name → "a" or "b") reach those clusters, with
// the first name current.
func (tc *twoClusters) kubeconfig(t *testing.T, contexts ...[2]string) string {
	t.Helper()
	out := clientcmdapi.NewConfig()
	for _, c := range contexts {
		src := tc.a
		if c[1] == "b" {
			src = tc.b
		}
		cur := src.Contexts[src.CurrentContext]
		out.Clusters["cluster-"+c[1]] = src.Clusters[cur.Cluster]
		out.AuthInfos["user-"+c[1]] = src.AuthInfos[cur.AuthInfo]
		out.Contexts[c[0]] = &clientcmdapi.Context{Cluster: "cluster-" + c[1], AuthInfo: "user-" + c[1]}
	}
	out.CurrentContext = contexts[0][0]
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertNothingOnB checks that cluster B holds nothing of kfdeploy: no namespace of the app, and
// no inventory, lock or member anywhere.
func (tc *twoClusters) assertNothingOnB(t *testing.T, ns, when string) {
	t.Helper()
	ctx := context.Background()
	if _, err := tc.kubeB.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("%s: namespace %s exists on cluster B (err %v)", when, ns, err)
	}
	sel := metav1.ListOptions{LabelSelector: inventory.LabelApp}
	secrets, err := tc.kubeB.CoreV1().Secrets("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := tc.kubeB.CoordinationV1().Leases("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := tc.kubeB.CoreV1().ServiceAccounts("").List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(secrets.Items) + len(leases.Items) + len(accounts.Items); n > 0 {
		t.Errorf("%s: cluster B has %d kfdeploy objects (secrets %d, leases %d, service accounts %d)", when, n, len(secrets.Items), len(leases.Items), len(accounts.Items))
	}
}

func short(uid string) string { return strings.SplitN(uid, "-", 2)[0] }

// TestClusterIdentityGuard: an app applied to cluster A refuses to apply, diff or delete on
// cluster B — through another context, and through the same context name pointed at B — naming
// both servers and writing nothing to B; with --add-cluster, B is added and both then work.
func TestClusterIdentityGuard(t *testing.T) {
	e := newEnv(t)
	tc := newTwoClusters(t, e)
	ctx := context.Background()
	appDir, ns := e.newApp(t, "--components", "core")
	e.cleanupNamespace(t, ns)
	t.Cleanup(func() { _ = tc.kubeB.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	e.mustRun(t, appDir, "generate")
	both := tc.kubeconfig(t, [2]string{"prod", "a"}, [2]string{"staging", "b"})

	// The first apply needs no flag and records cluster A.
	first := e.mustRun(t, appDir, "apply", "--kubeconfig", both, "--timeout", "2m")
	if !strings.Contains(first.stdout, `recorded context "prod"`) {
		t.Errorf("first apply does not say it recorded the cluster:\n%s", first.stdout)
	}
	state, err := clusterid.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := state.Lookup("prod"); !ok || rec.UID != tc.uidA || rec.Server != tc.serverA || rec.CAFingerprint == "" {
		t.Fatalf("state after the first apply: %+v, want context prod with A's UID %s, server %s and a CA fingerprint", state.Clusters, tc.uidA, tc.serverA)
	}
	parent, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "kfdeploy-app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := parent.Annotations[inventory.AnnotationClusterUID]; got != tc.uidA {
		t.Errorf("inventory records cluster UID %q, want A's %s", got, tc.uidA)
	}
	if got := parent.Annotations[inventory.AnnotationClusterContext]; got != "prod" {
		t.Errorf("inventory records context %q, want prod", got)
	}

	refused := func(when, want string, r result, code int) {
		t.Helper()
		if r.code != code {
			t.Errorf("%s: exit %d, want %d (refused)\nstdout: %s\nstderr: %s", when, r.code, code, r.stdout, r.stderr)
		}
		for _, w := range []string{want, tc.serverA, tc.serverB, short(tc.uidA), short(tc.uidB), "--add-cluster"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: error does not name %q:\n%s", when, w, r.stderr)
			}
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
			t.Errorf("%s: the refusal is %d lines, want one:\n%s", when, n+1, r.stderr)
		}
		tc.assertNothingOnB(t, ns, when)
	}

	// Another context, reaching B.
	refused("apply --context staging", `not context "staging"`, e.run(t, appDir, "apply", "--kubeconfig", both, "--context", "staging"), 1)
	refused("diff --context staging", `not context "staging"`, e.run(t, appDir, "diff", "--kubeconfig", both, "--context", "staging"), 2)
	refused("delete --context staging", `not context "staging"`, e.run(t, appDir, "delete", "--yes", "--kubeconfig", both, "--context", "staging"), 1)

	// The same context name, now pointed at B.
	moved := tc.kubeconfig(t, [2]string{"prod", "b"})
	for _, args := range [][]string{{"apply"}, {"diff"}, {"delete", "--yes"}, {"delete", "--purge", "--yes"}} {
		code := 1
		if args[0] == "diff" {
			code = 2
		}
		refused(strings.Join(args, " ")+" through prod pointed at B", `context "prod" now reaches another cluster`,
			e.run(t, appDir, append(args, "--kubeconfig", moved)...), code)
	}
	if after, _ := clusterid.Load(appDir); len(after.Clusters) != 1 {
		t.Errorf("refused runs changed the known clusters: %+v", after.Clusters)
	}

	// With the flag, B is added; then both work without it.
	e.mustRun(t, appDir, "apply", "--kubeconfig", both, "--context", "staging", "--add-cluster", "--timeout", "2m")
	state, err = clusterid.Load(appDir)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := state.Lookup("prod"); !ok || a.UID != tc.uidA {
		t.Errorf("after --add-cluster, prod is %+v, want A", a)
	}
	if b, ok := state.Lookup("staging"); !ok || b.UID != tc.uidB || b.Server != tc.serverB {
		t.Errorf("after --add-cluster, staging is %+v, want B (UID %s, server %s)", b, tc.uidB, tc.serverB)
	}
	if _, err := tc.kubeB.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("apply --add-cluster did not apply to B: %v", err)
	}
	for _, c := range []string{"prod", "staging"} {
		if r := e.run(t, appDir, "diff", "--kubeconfig", both, "--context", c); r.code != 0 {
			t.Errorf("diff --context %s after adding B: exit %d, want 0 (no changes):\n%s%s", c, r.code, r.stdout, r.stderr)
		}
	}
	// prod pointed at B is still refused: prod is A's context.
	if r := e.run(t, appDir, "diff", "--kubeconfig", moved); r.code != 2 || !strings.Contains(r.stderr, "now reaches another cluster") {
		t.Errorf("diff through prod pointed at B after adding staging: exit %d, want the refusal:\n%s", r.code, r.stderr)
	}

	// delete --app without the app directory names the cluster it acts on, with counts.
	elsewhere := t.TempDir()
	dry := e.mustRun(t, elsewhere, "delete", "--app", "app", "--namespace", ns, "--dry-run", "--kubeconfig", both, "--context", "staging")
	for _, w := range []string{"app app in namespace " + ns, `context "staging"`, tc.serverB, short(tc.uidB), "objects"} {
		if !strings.Contains(dry.stderr, w) {
			t.Errorf("delete --app does not name %q before acting:\n%s", w, dry.stderr)
		}
	}

	e.mustRun(t, appDir, "delete", "--yes", "--kubeconfig", both, "--context", "staging")
	eventually(t, time.Minute, "namespace gone from B", func(ctx context.Context) (bool, error) {
		_, err := tc.kubeB.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return isGone(err)
	})
	e.mustRun(t, appDir, "delete", "--yes", "--kubeconfig", both, "--context", "prod")
	if _, err := e.kube.CoreV1().Secrets(ns).Get(ctx, "kfdeploy-app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete through prod, the inventory on A: %v, want not found", err)
	}
}
