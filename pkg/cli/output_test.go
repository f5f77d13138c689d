package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

// jsonKeys encodes v with printJSON and returns the document's top-level keys, sorted.
func jsonKeys(t *testing.T, v any) (map[string]any, []string) {
	t.Helper()
	var buf bytes.Buffer
	if err := printJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return doc, keys
}

func sortedCopy(s ...string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// The -o json documents are a schema for CI: these tests fail when a key is renamed, dropped
// or added without the README following.

func TestRunReportSchema(t *testing.T) {
	res := &engine.Result{Objects: []engine.ObjectResult{
		{ID: "ns/ConfigMap/b", Action: engine.Created},
		{ID: "ns/ConfigMap/a", Action: engine.Kept, Detail: "PersistentVolumeClaim holds data"},
	}}
	phases := []engine.Phase{{Name: "preflight cluster", Seconds: 0.01}, {Name: "plan", Seconds: 0.2}, {Name: "wait", Seconds: 1.2}}
	doc, keys := jsonKeys(t, newRunReport("apply", "myapp", "kf", "server", res, phases, 1500*time.Millisecond, errors.New("boom")))
	if want := sortedCopy("operation", "app", "namespace", "dryRun", "counts", "objects", "phases", "durationSeconds", "error"); !reflect.DeepEqual(keys, want) {
		t.Errorf("apply report keys %v, want %v", keys, want)
	}
	counts := doc["counts"].(map[string]any)
	for _, a := range []string{"created", "configured", "unchanged", "pruned", "deleted", "kept", "failed"} {
		if _, ok := counts[a]; !ok {
			t.Errorf("counts lacks %q: %v", a, counts)
		}
	}
	if counts["created"] != 1.0 || counts["kept"] != 1.0 || doc["durationSeconds"] != 1.5 || doc["error"] != "boom" {
		t.Errorf("report %v", doc)
	}
	objs := doc["objects"].([]any)
	first := objs[0].(map[string]any)
	if first["id"] != "ns/ConfigMap/a" || first["action"] != "kept" || first["detail"] == nil {
		t.Errorf("objects are not sorted by id with id, action, detail: %v", objs)
	}
	gotPhases := doc["phases"].([]any)
	if len(gotPhases) != 3 || gotPhases[1].(map[string]any)["name"] != "plan" || gotPhases[2].(map[string]any)["seconds"] != 1.2 {
		t.Errorf("phases = %v, want the run's phases in order with name and seconds", gotPhases)
	}
	// Without a result (apply stopped before writing) the keys stay, with empty values.
	doc, _ = jsonKeys(t, newRunReport("delete", "myapp", "kf", "", nil, nil, 0, nil))
	if objs, ok := doc["objects"].([]any); !ok || len(objs) != 0 {
		t.Errorf("objects of an empty run = %v, want []", doc["objects"])
	}
	if ps, ok := doc["phases"].([]any); !ok || len(ps) != 0 {
		t.Errorf("phases of an empty run = %v, want []", doc["phases"])
	}
}

func TestDiffDocumentSchema(t *testing.T) {
	doc, keys := jsonKeys(t, diffDocument{App: "a", Namespace: "n", Changed: true, Counts: map[engine.Change]int{engine.ChangeCreate: 1},
		Objects: []diffEntry{{ID: "n/ConfigMap/c", Change: engine.ChangeCreate, Diff: "+x\n"}}})
	if want := sortedCopy("app", "namespace", "changed", "counts", "objects"); !reflect.DeepEqual(keys, want) {
		t.Errorf("diff document keys %v, want %v", keys, want)
	}
	entry := doc["objects"].([]any)[0].(map[string]any)
	if entry["id"] != "n/ConfigMap/c" || entry["change"] != "create" || entry["diff"] != "+x\n" {
		t.Errorf("diff entry %v", entry)
	}
}

func TestWritePreflightTableAndJSON(t *testing.T) {
	rep := &preflight.Report{App: "myapp", Namespace: "kf", Passed: false, Summary: preflight.Summary{OK: 1, Fail: 1},
		Checks: []preflight.Finding{
			{Check: "cluster", Status: preflight.OK, Finding: "API server answers"},
			{Check: "storage", Status: preflight.Fail, Finding: "kf/data needs 1Gi\nReadWriteOnce", Remedy: "create a PV"},
		},
		CreatedVolumes: []preflight.Volume{{Name: "kfdeploy-kf-data", AccessModes: []string{"ReadWriteOnce"}}}}
	var buf bytes.Buffer
	if err := writePreflightTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	want := `CHECK    STATUS  FINDING
cluster  ok      API server answers
storage  FAIL    kf/data needs 1Gi ReadWriteOnce
                 ↳ create a PV
created PersistentVolumes: kfdeploy-kf-data
preflight FAILED (app myapp, namespace kf): 1 ok, 0 warnings, 1 failed (0.0s)
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}

	doc, keys := jsonKeys(t, rep)
	if want := sortedCopy("app", "namespace", "passed", "checks", "summary", "createdVolumes", "phases", "durationSeconds"); !reflect.DeepEqual(keys, want) {
		t.Errorf("preflight JSON keys %v, want %v", keys, want)
	}
	check := doc["checks"].([]any)[1].(map[string]any)
	if check["name"] != "storage" || check["status"] != "fail" || check["remedy"] != "create a PV" {
		t.Errorf("check entry %v", check)
	}
	volume := doc["createdVolumes"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "claim", "server", "path", "capacity", "accessModes", "storageClassName", "dryRun"} {
		if _, ok := volume[k]; !ok {
			t.Errorf("createdVolumes entry lacks %q: %v", k, volume)
		}
	}
	summary := doc["summary"].(map[string]any)
	if summary["ok"] != 1.0 || summary["warn"] != 0.0 || summary["fail"] != 1.0 {
		t.Errorf("summary %v", summary)
	}
}

func TestWriteTopNodes(t *testing.T) {
	gpu := func(n int64) map[string]int64 { return map[string]int64{"nvidia.com/gpu": n} }
	snap := &topnodes.Snapshot{ResourceNames: []string{"nvidia.com/gpu"}, Nodes: []topnodes.Node{
		{Name: "g1", InternalIP: "10.0.0.2", Role: "worker", Allocatable: gpu(2), Allocated: gpu(1)},
		{Name: "g2", InternalIP: "10.0.0.3", Role: "worker", Allocatable: gpu(4), Allocated: gpu(2)},
		{Name: "m1", InternalIP: "10.0.0.1", Role: "control-plane", Allocatable: map[string]int64{}, Allocated: map[string]int64{}},
		{Name: "x", Role: "worker", Allocatable: map[string]int64{}, Allocated: map[string]int64{}},
	}}
	var buf bytes.Buffer
	if err := writeTopNodes(&buf, snap); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"NAME  IPADDRESS  ROLE           GPU(Total)  GPU(Allocated)",
		"g1    10.0.0.2   worker         2           1",
		"g2    10.0.0.3   worker         4           2",
		"m1    10.0.0.1   control-plane  0           0",
		"x     <none>     worker         0           0",
		"Allocated/Total GPUs In Cluster: 3/6 (50%)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusDocumentSchema(t *testing.T) {
	doc, keys := jsonKeys(t, statusDocument{App: "a", Namespace: "n",
		Objects: []readiness.ObjectStatus{{ID: "n/Deployment.apps/d", Status: "Current"}},
		Pods:    []readiness.PodStatus{{Namespace: "n", Name: "d-1", Ready: "1/1", Phase: "Running", Node: "k8s-g1"}}})
	if want := sortedCopy("app", "namespace", "objects", "pods"); !reflect.DeepEqual(keys, want) {
		t.Errorf("status document keys %v, want %v", keys, want)
	}
	pod := doc["pods"].([]any)[0].(map[string]any)
	for _, k := range []string{"namespace", "name", "ready", "phase", "node"} {
		if _, ok := pod[k]; !ok {
			t.Errorf("pod entry lacks %q: %v", k, pod)
		}
	}
	obj := doc["objects"].([]any)[0].(map[string]any)
	if obj["id"] != "n/Deployment.apps/d" || obj["status"] != "Current" {
		t.Errorf("object entry %v", obj)
	}
}

func TestWritePhases(t *testing.T) {
	var buf bytes.Buffer
	if err := writePhases(&buf, []engine.Phase{{Name: "preflight fit", Seconds: 0.012}, {Name: "wait", Seconds: 1.5}}, 1.75); err != nil {
		t.Fatal(err)
	}
	want := `PHASE          SECONDS
preflight fit  0.012
wait           1.500
total          1.750
`
	if buf.String() != want {
		t.Errorf("phases table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestTopNodesDocument(t *testing.T) {
	gpu := func(n int64) map[string]int64 { return map[string]int64{"nvidia.com/gpu": n} }
	snap := &topnodes.Snapshot{ResourceNames: []string{"nvidia.com/gpu"}, Pods: 7, Unscheduled: gpu(1), Nodes: []topnodes.Node{
		{Name: "g1", InternalIP: "10.0.0.2", Role: "worker", Ready: true, Allocatable: gpu(2), Allocated: gpu(1)},
		{Name: "g2", InternalIP: "10.0.0.3", Role: "worker", Unschedulable: true, Allocatable: gpu(4), Allocated: gpu(2)},
		{Name: "m1", InternalIP: "10.0.0.1", Role: "control-plane", Ready: true},
	}}
	doc, keys := jsonKeys(t, topNodesDoc(snap, time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)))
	if want := sortedCopy("time", "resourceNames", "nodes", "gpuTotal", "gpuAllocated", "gpuUnscheduled", "pods"); !reflect.DeepEqual(keys, want) {
		t.Errorf("top nodes document keys %v, want %v", keys, want)
	}
	if doc["time"] != "2026-12-08T01:02:03Z" || doc["gpuTotal"] != 6.0 || doc["gpuAllocated"] != 3.0 || doc["gpuUnscheduled"] != 1.0 || doc["pods"] != 7.0 {
		t.Errorf("sums: %v", doc)
	}
	nodes := doc["nodes"].([]any)
	g2 := nodes[1].(map[string]any)
	nodeKeys := make([]string, 0, len(g2))
	for k := range g2 {
		nodeKeys = append(nodeKeys, k)
	}
	sort.Strings(nodeKeys)
	if want := sortedCopy("name", "internalIP", "role", "ready", "unschedulable", "gpuTotal", "gpuAllocated", "allocatable", "allocated"); !reflect.DeepEqual(nodeKeys, want) {
		t.Errorf("node keys %v, want %v", nodeKeys, want)
	}
	if g2["name"] != "g2" || g2["unschedulable"] != true || g2["gpuTotal"] != 4.0 || g2["allocated"].(map[string]any)["nvidia.com/gpu"] != 2.0 {
		t.Errorf("node g2: %v", g2)
	}
	if m1 := nodes[2].(map[string]any); m1["allocatable"] == nil || len(m1["allocatable"].(map[string]any)) != 0 {
		t.Errorf("a node without GPUs has an empty allocatable map, not null: %v", m1)
	}
}

// With --watch, -o json prints one compact document per refresh and line.
func TestWatchJSONLines(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	var buf bytes.Buffer
	err := watchJSON(ctx, &buf, time.Millisecond, func() ([]byte, error) {
		n++
		if n == 3 {
			cancel()
		}
		return []byte(fmt.Sprintf("{\n  \"n\": %d\n}\n", n)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != `{"n":1}` || lines[1] != `{"n":2}` {
		t.Errorf("lines %q, want one compact document per refresh until interrupted", lines)
	}
	if err := watchJSON(context.Background(), &buf, time.Millisecond, func() ([]byte, error) { return nil, errors.New("boom") }); err == nil || err.Error() != "boom" {
		t.Errorf("a failed refresh: %v, want its error", err)
	}
}
