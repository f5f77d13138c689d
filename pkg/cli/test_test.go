package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kfdeploy/kfdeploy/pkg/smoketest"
)

func TestTestFlagsAreCheckedFirst(t *testing.T) {
	dir := t.TempDir() // no app here: flags fail before app.yaml is read
	mustFail(t, []string{"--gpus must be at least 1"}, "test", "--app-dir", dir, "--gpus", "0")
	mustFail(t, []string{`--output "yaml" is not supported`}, "test", "--app-dir", dir, "-o", "yaml")
	mustFail(t, []string{"--workflow-image must not be empty"}, "test", "--app-dir", dir, "--workflow-image", "")
	mustFail(t, []string{"--timeout must be positive"}, "test", "--app-dir", dir, "--timeout", "0s")
	mustFail(t, []string{"app.yaml not found"}, "test", "--app-dir", dir)
}

func TestTestTable(t *testing.T) {
	rep := &smoketest.Report{App: "myapp", Namespace: "kf", Leftovers: []string{"TFJob kf/kfdeploy-test-tfjob-aaaaa"},
		Results: []smoketest.Result{
			{Workload: "tfjob", Component: "tf-job-operator", Kind: "TFJob", Object: "kf/kfdeploy-test-tfjob-bbbbb", Status: smoketest.Failed, Reason: "pod x is Pending: 0/7 nodes are available", DurationSeconds: 1.25, Cleanup: "kept"},
			{Workload: "workflow", Component: "argo", Kind: "Workflow", Status: smoketest.Skipped, Reason: "the app has no argo component"},
		},
		Summary: smoketest.Summary{Failed: 1, Skipped: 1}, DurationSeconds: 1.3}
	var out bytes.Buffer
	if err := writeTestTable(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"removed leftover TFJob kf/kfdeploy-test-tfjob-aaaaa\n",
		"tfjob     tf-job-operator  failed   1.2s  pod x is Pending: 0/7 nodes are available\n",
		"workflow  argo             skipped        the app has no argo component\n",
		"kept TFJob kf/kfdeploy-test-tfjob-bbbbb (the next 'kfdeploy test' removes it)\n",
		"test myapp in namespace kf: 0 passed, 1 failed, 1 skipped (1.3s)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
