//go:build conformance

package conformance

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// TestLostSecretsKeepDatabasePasswords deploys Katib and the model registry, gives each
// database its user with the password of its Secret (as the MySQL image does at its first
// start), then loses secrets.yaml as a CI checkout would, runs generate and apply, and signs in
// again: the real MariaDB on the same data directory still accepts the model registry's user
// with the password its Secret now holds, and Katib's real db-manager, started from its
// Deployment with that Secret, connects and serves.
func TestLostSecretsKeepDatabasePasswords(t *testing.T) {
	dbManagerBin := binary(t, "katib-db-manager")
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	db := fetchMariaDB(ctx, t)

	dir, ns := e.NewApp(t, "secrets", "--components", "core,katib,modeldb")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() { e.Run(t, dir, "delete", "--purge", "--yes") })
	// Nothing serves Katib's webhooks in this test.
	e.MustRun(t, dir, "param", "set", "katib", "webhookFailurePolicy", "Ignore")
	e.MustRun(t, dir, "param", "set", "katib", "storageClass", `""`)
	e.MustRun(t, dir, "param", "set", "modeldb", "storageClass", `""`)
	e.MustRun(t, dir, "generate")
	pvRoot := t.TempDir()
	for _, c := range e2eutil.AppClaims(t, e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests")), ns) {
		createDataPV(t, e.Env, c, filepath.Join(pvRoot, c.Name))
	}
	e.MustRun(t, dir, "apply")
	if err := e.h.ScaleDown(ctx); err != nil {
		t.Fatal(err)
	}
	// The databases' first start: each user with its Secret's password.
	withDatabases(ctx, t, e.Env, db, ns, func(name, addr, user, password, database string) {}, true)

	// A checkout without secrets.yaml.
	if err := os.Remove(filepath.Join(dir, "secrets.yaml")); err != nil {
		t.Fatal(err)
	}
	e.MustRun(t, dir, "generate")
	e.MustRun(t, dir, "apply")
	if err := e.h.ScaleDown(ctx); err != nil {
		t.Fatal(err)
	}

	withDatabases(ctx, t, e.Env, db, ns, func(name, addr, user, password, database string) {
		if _, err := db.Query(ctx, addr, user, password, database, "SELECT 1;"); err != nil {
			t.Errorf("%s no longer accepts user %s with the password of its Secret after secrets.yaml was lost: %v", name, user, err)
		}
		if name != "katib-mysql" {
			return
		}
		// Katib's db-manager, with the Deployment's env (the Secret's password), connects
		// before it starts serving (cmd/db-manager/v1beta1/main.go@v0.19.0: NewKatibDBInterface,
		// DBInit, then "Start Katib manager").
		port := freePortString(t)
		dbm, err := e.h.Start(ctx, harness.Program{
			Binary: dbManagerBin, Namespace: ns, Deployment: "katib-db-manager",
			Args:  func(a []string) []string { return harness.SetFlag(a, "--listen-address", "127.0.0.1:"+port) },
			Ports: map[int32]int32{6789: port32(t, port)},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer dbm.Stop(5 * time.Second)
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer wcancel()
		if _, err := dbm.WaitLog(wctx, regexp.MustCompile(`Start Katib manager`)); err != nil {
			t.Errorf("Katib's db-manager did not start over the database after secrets.yaml was lost: %v", err)
		}
	}, false)
}
