package app

import (
	"context"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// guarded is the outcome of the cluster guard: the cluster a run reaches, and whether the app
// directory is to record it.
type guarded struct {
	appDir   string
	state    *clusterid.State
	Current  clusterid.Identity
	decision clusterid.Decision
}

// guardCluster is the first step of every phase that acts on the app's cluster (apply, diff,
// delete, test, status, preflight creating NFS volumes): it reads the identity of the cluster c
// reaches and decides with the app directory's record of its clusters (pkg/clusterid). When the
// directory records no cluster (a fresh clone), it also reads whether the cluster already holds
// the app's inventory. A refusal comes before the run writes anything, and before its lock.
func guardCluster(ctx context.Context, c *kube.Client, appDir string, set inventory.ApplySet, op clusterid.Operation, add bool) (*guarded, error) {
	state, err := clusterid.Load(appDir)
	if err != nil {
		return nil, err
	}
	current, err := c.ClusterIdentity(ctx)
	if err != nil {
		return nil, err
	}
	run := clusterid.Run{Op: op, Add: add, Namespace: set.Namespace}
	if len(state.Clusters) == 0 && !add && op != clusterid.Status {
		inv, err := inventory.Read(ctx, c, set)
		if err != nil {
			return nil, err
		}
		run.Deployed = inv.Exists
	}
	d, err := clusterid.Decide(state, current, run)
	if err != nil {
		return nil, err
	}
	return &guarded{appDir: appDir, state: state, Current: current, decision: d}, nil
}

// record writes the current cluster into the app directory when the decision asks for it, and
// reports whether it did.
func (g *guarded) record() (bool, error) {
	if !g.decision.Record {
		return false, nil
	}
	g.state.Record(g.Current, time.Now().UTC())
	if err := g.state.Save(g.appDir); err != nil {
		return false, err
	}
	return true, nil
}
