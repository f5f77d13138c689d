package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// Recording a cluster must neither make the manifests stale nor change what generate writes.
func TestRecordedClustersAreNotGenerateInputs(t *testing.T) {
	dir := newTestApp(t, map[string]string{"db": dbComponent}, "db")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, filepath.Join(dir, ManifestsDir))
	s, err := clusterid.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Record(clusterid.Identity{Context: "prod", Server: "https://10.0.0.1:6443", UID: "1a2b3c4d-x"}, time.Now())
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests(dir); err != nil {
		t.Fatalf("LoadManifests after recording a cluster: %v", err)
	}
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if after := readDir(t, filepath.Join(dir, ManifestsDir)); !reflect.DeepEqual(before, after) {
		t.Error("generate wrote other manifests after a cluster was recorded")
	}
	if _, err := os.Stat(clusterid.StatePath(dir)); err != nil {
		t.Errorf("generate removed the record of clusters: %v", err)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(data)
	}
	return out
}

// A fresh clone (no .kfdeploy/) meets a cluster that holds the app's inventory: every command
// that acts on the app is refused, naming the cluster, unless --add-cluster; status reads.
func TestGuardFreshCloneOnADeployedCluster(t *testing.T) {
	dir := t.TempDir()
	set := inventory.ApplySet{App: "app", Namespace: "kf"}
	kubeSystem := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "1a2b3c4d-0000"}}
	parent := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.ParentName(),
		Labels: map[string]string{inventory.LabelApplySetID: set.ID()}}}
	c := &kube.Client{Typed: fake.NewClientset(kubeSystem, parent), Config: &rest.Config{Host: "https://10.0.0.1:6443"}, Context: "prod"}
	ctx := context.Background()
	for _, op := range []clusterid.Operation{clusterid.Apply, clusterid.Diff, clusterid.Delete, clusterid.Test, clusterid.CreateVolumes} {
		_, err := guardCluster(ctx, c, dir, set, op, false)
		var refused *clusterid.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), `context "prod" (server https://10.0.0.1:6443, kube-system UID 1a2b3c4d) already holds this app`) {
			t.Errorf("%s: %v, want a refusal naming the cluster", op, err)
		}
	}
	if _, err := guardCluster(ctx, c, dir, set, clusterid.Status, false); err != nil {
		t.Errorf("status: %v, want it to read", err)
	}
	g, err := guardCluster(ctx, c, dir, set, clusterid.Apply, true)
	if err != nil {
		t.Fatalf("apply --add-cluster: %v", err)
	}
	if recorded, err := g.record(); err != nil || !recorded {
		t.Fatalf("apply --add-cluster recorded %v (%v), want the cluster recorded", recorded, err)
	}
	if _, err := guardCluster(ctx, c, dir, set, clusterid.Delete, false); err != nil {
		t.Errorf("delete after the cluster was added: %v", err)
	}
}
