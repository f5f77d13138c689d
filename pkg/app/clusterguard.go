package app

import (
	"context"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// guarded is the outcome of the cluster guard: the cluster a run reaches, and whether the app
// directory is to record it.
type guarded struct {
	appDir   string
	state    *clusterid.State
	Current  clusterid.Identity
	decision clusterid.Decision
}

// guardCluster is the phase step that keeps apply, diff and delete on the clusters the app knows
// (pkg/clusterid): it reads the identity of the cluster c reaches and decides with the app
// directory's record of its clusters. A refusal comes before the run writes anything.
func guardCluster(ctx context.Context, c *kube.Client, appDir string, op clusterid.Operation, add bool) (*guarded, error) {
	state, err := clusterid.Load(appDir)
	if err != nil {
		return nil, err
	}
	current, err := c.ClusterIdentity(ctx)
	if err != nil {
		return nil, err
	}
	d, err := clusterid.Decide(state, current, op, add)
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
