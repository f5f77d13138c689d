//go:build conformance

// Package conformance checks kfdeploy's components with their real upstream
// programs: `make conformance` builds them (scripts/harness.sh build), starts
// a local cluster, and runs these tests with KFDEPLOY_BIN, KUBECONFIG and
// KFDEPLOY_HARNESS_DIR set. Each test applies its own app in its own
// namespace and runs the component's programs through test/harness in place
// of the applied Deployments.
package conformance

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// toolsDir holds the tool modules (go test runs in the package directory).
const toolsDir = "../tools"

// listedBinaries returns every binary name of test/tools/*/harness.list.
func listedBinaries(t *testing.T) []string {
	t.Helper()
	lists, err := filepath.Glob(filepath.Join(toolsDir, "*", "harness.list"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range lists {
		f, err := os.Open(l)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			names = append(names, strings.Fields(line)[0])
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(names)
	return names
}
