package app

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
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
