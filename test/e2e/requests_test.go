//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// TestNoopApplyRequests counts, from the API server's apiserver_request_total, the requests of
// a default apply (preflight and wait included) of an app that is deployed already and has not
// changed: nothing is written and nothing dry-run; each resource is listed at most once (pods
// once per namespace: preflight reads them in per-namespace streams); no object is read by
// GET; the access reviews are bounded by the app's kinds and namespaces. Counts, not times:
// it holds on a loaded machine.
//
// The counter counts every client of the API server: the cluster's own controllers and node
// agents write leases, events and status subresources all the time, so those are left out
// (kfdeploy's lock is a lease too; its status writes are none).
func TestNoopApplyRequests(t *testing.T) {
	e := newEnv(t)
	ns := uniqueName("e2e-requests")
	e.cleanupNamespace(t, ns)
	const configMapCount = 30
	appDir := writeRawApp(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: %[1]s
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
`, ns)+configMaps(ns, configMapCount))
	e.mustRun(t, appDir, "generate")
	e.mustRun(t, appDir, "apply")

	// Namespaces being finalized (earlier tests' cleanups) make the namespace and endpoint
	// controllers delete objects meanwhile: measure once none is.
	eventually(t, 3*time.Minute, "no namespace Terminating", func(ctx context.Context) (bool, error) {
		list, err := e.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, n := range list.Items {
			if n.Status.Phase == corev1.NamespaceTerminating {
				return false, nil
			}
		}
		return true, nil
	})
	u := e.util()
	before := u.ScrapeRequests(t)
	out := e.mustRun(t, appDir, "apply", "-o", "json")
	got := u.ScrapeRequests(t).Since(before)
	t.Logf("requests of a default no-op apply (all clients):\n%s", got)

	var rep struct {
		Counts map[string]int `json:"counts"`
		Phases []struct {
			Name string `json:"name"`
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &rep); err != nil {
		t.Fatalf("parse -o json: %v\n%s", err, out.stdout)
	}
	if rep.Counts["unchanged"] != configMapCount+3 {
		t.Fatalf("the no-op apply left %d objects unchanged, want all %d: %v", rep.Counts["unchanged"], configMapCount+3, rep.Counts)
	}

	// Others' traffic: controllers' and kubelets' (kwok's) leases, events and status.
	ignored := map[string]bool{"leases.coordination.k8s.io": true, "events": true, "events.events.k8s.io": true}
	ours := func(r e2eutil.Request) bool { return !ignored[r.Resource] && r.Subresource == "" }
	// What kfdeploy writes, if anything: the app's kinds and its inventory Secret (controllers
	// write endpoints, replica sets and the like on their own schedule).
	written := map[string]bool{"namespaces": true, "configmaps": true, "services": true, "deployments.apps": true, "secrets": true}

	if n := got.Count(func(r e2eutil.Request) bool { return ours(r) && written[r.Resource] && e2eutil.IsWrite(r.Verb) }); n != 0 {
		t.Errorf("a no-op apply wrote %d times, want 0", n)
	}
	if n := got.Count(func(r e2eutil.Request) bool { return r.DryRun }); n != 0 {
		t.Errorf("a no-op apply sent %d dry runs, want 0", n)
	}

	namespaces, err := e.kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string]int{}
	gets := map[string]int{}
	for r, n := range got {
		if !ours(r) {
			continue
		}
		switch r.Verb {
		case "LIST":
			lists[r.Resource] += n
		case "GET":
			gets[r.Resource] += n
		}
	}
	for res, n := range lists {
		limit := 1
		if res == "pods" {
			limit = len(namespaces.Items)
		}
		if n > limit {
			t.Errorf("%s listed %d times, want at most %d", res, n, limit)
		}
	}
	// No GET per object: the app's kinds are never read by name; what is (the inventory
	// Secret, the kube-system namespace of the cluster's identity) is read once.
	for _, res := range []string{"configmaps", "services", "deployments.apps"} {
		if n := gets[res]; n != 0 {
			t.Errorf("%s read by GET %d times, want 0 (a list serves)", res, n)
		}
	}
	for res, n := range gets {
		if n > 2 {
			t.Errorf("%s read by GET %d times, want at most 2 (not once per object)", res, n)
		}
	}

	// Access reviews: at most one per verb on each of the app's resources (namespaces,
	// services, deployments, configmaps) and of what kfdeploy keeps beside them (the inventory
	// Secret, the lock's Lease), in its one namespace.
	const appResources, kept, verbs, appNamespaces = 4, 2, 5, 1
	if n, limit := got.Count(func(r e2eutil.Request) bool { return r.Resource == reviews }), (appResources+kept)*verbs*appNamespaces; n > limit {
		t.Errorf("%d access reviews, want at most %d (the app's kinds and namespaces)", n, limit)
	}
}

const reviews = "selfsubjectaccessreviews.authorization.k8s.io"
