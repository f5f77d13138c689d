//go:build conformance

package conformance

import (
	"testing"

	"github.com/kfdeploy/kfdeploy/test/harness"
)

// TestHarnessBinaries checks that every binary listed in test/tools/*/harness.list
// is built in the harness cache (make conformance builds them first); it skips
// while no binary is listed.
func TestHarnessBinaries(t *testing.T) {
	names := listedBinaries(t)
	if len(names) == 0 {
		t.Skip("no binary is listed in test/tools/*/harness.list yet")
	}
	for _, n := range names {
		if _, err := harness.BinaryPath(n); err != nil {
			t.Error(err)
		}
	}
}
