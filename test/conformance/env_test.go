//go:build conformance

package conformance

import (
	"context"
	"testing"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

const how = "make conformance"

// env is the cluster, the kfdeploy binary and a harness for one test.
type env struct {
	*e2eutil.Env
	h *harness.Harness
}

// newEnv connects to the cluster and starts a harness whose processes are
// stopped, and whose logs are checked for refused requests, when the test
// ends.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := e2eutil.NewEnv(t, how)
	h, err := harness.New(context.Background(), e.Rest, harness.Options{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.CheckNoForbidden(t)
		h.Close()
	})
	return &env{Env: e, h: h}
}

// binary returns the harness binary name, or skips the test when it is not
// built (scripts/harness.sh build NAME).
func binary(t *testing.T, name string) string {
	t.Helper()
	p, err := harness.BinaryPath(name)
	if err != nil {
		t.Skip(err)
	}
	return p
}
