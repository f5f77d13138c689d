package cli

import (
	"strings"
	"testing"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

func TestDescribeDeleteNamesClusterAndCounts(t *testing.T) {
	cluster := clusterid.Identity{Context: "prod", Server: "https://10.0.0.1:6443", UID: "1a2b3c4d-0000"}
	p := app.DeletePlan{App: "lab", Namespace: "kubeflow", Cluster: cluster,
		DeletePlan: engine.DeletePlan{Recorded: cluster, Delete: 12, Keep: 1, Namespaces: 1}}
	got := describeDelete(p)
	want := `app lab in namespace kubeflow on context "prod" (server https://10.0.0.1:6443, kube-system UID 1a2b3c4d): 12 objects and 1 namespace, keeping 1 (PVCs, PVs, generated secrets, CRDs and shared objects)`
	if got != want {
		t.Errorf("describeDelete =\n  %s\nwant\n  %s", got, want)
	}
	p.Purge, p.Keep = true, 0
	if got := describeDelete(p); !strings.Contains(got, "INCLUDING PVCs") {
		t.Errorf("with --purge: %s", got)
	}
	p.Goes = []engine.Contents{
		{Holder: "CustomResourceDefinition.apiextensions.k8s.io/workflows.argoproj.io", Kind: "Workflow.argoproj.io", Namespace: "alice", Count: 2, Names: []string{"a", "b"}},
		{Holder: "Namespace/kubeflow", Kind: "PersistentVolumeClaim", Namespace: "kubeflow", Count: 1, Names: []string{"claim-bob"}},
	}
	if got := describeDelete(p); !strings.Contains(got, "2 Workflow.argoproj.io in alice (a, b); 1 PersistentVolumeClaim in kubeflow (claim-bob)") {
		t.Errorf("with --purge, the users' objects that go are not named: %s", got)
	}
	p.Goes = nil
	p.Recorded = clusterid.Identity{Server: "https://10.0.0.9:6443", UID: "5e6f7a8b-1111"}
	if got := describeDelete(p); !strings.Contains(got, "inventory was written on another cluster (server https://10.0.0.9:6443, kube-system UID 5e6f7a8b)") {
		t.Errorf("an inventory from another cluster is not pointed out: %s", got)
	}
}
