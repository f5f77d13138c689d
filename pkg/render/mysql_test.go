package render

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestMySQLServerUpgrades holds both MySQL servers to what a data directory of an earlier
// release needs on MySQL 8.4 LTS: mysql_native_password enabled (8.4 disables it; modeldb's
// users of kfdeploy up to 8fd3195 were created with it), and no option that 8.4 removed
// (--default-authentication-plugin: the server refuses to start on an unknown option).
func TestMySQLServerUpgrades(t *testing.T) {
	for _, c := range []struct{ component, deployment string }{{"katib", "katib-mysql"}, {"modeldb", "modeldb-mysql"}} {
		var d appsv1.Deployment
		typed(t, render(t, c.component, nil), "Deployment", c.deployment, &d)
		ctr := d.Spec.Template.Spec.Containers[0]
		if !strings.HasPrefix(ctr.Image, "docker.io/library/mysql:8.4.") {
			t.Errorf("%s: image %s, want the MySQL 8.4 LTS line", c.deployment, ctr.Image)
		}
		if !slices.Contains(ctr.Args, "--mysql-native-password=ON") {
			t.Errorf("%s: args %v lack --mysql-native-password=ON: users of earlier data directories could not sign in", c.deployment, ctr.Args)
		}
		for _, a := range ctr.Args {
			if strings.HasPrefix(a, "--default-authentication-plugin") {
				t.Errorf("%s: argument %s was removed in MySQL 8.4", c.deployment, a)
			}
		}
		// The claim and the data directory on it stay where the earlier release put them.
		if !slices.Contains(ctr.Args, "/var/lib/mysql/datadir") {
			t.Errorf("%s: args %v: want --datadir /var/lib/mysql/datadir", c.deployment, ctr.Args)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("%s: strategy %s, want Recreate: two servers must never share one data directory", c.deployment, d.Spec.Strategy.Type)
		}
	}
}
