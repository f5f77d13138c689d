package app

import (
	"context"
	"fmt"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
)

// DiffOptions are the resolved choices of a diff.
type DiffOptions struct {
	AppDir  string
	Cluster Cluster
	Prune   bool // include the members apply would prune
	// AddCluster diffs through a kube context the app does not know yet, recording it.
	AddCluster bool
}

// diffConcurrency bounds the dry-run applies of a diff in flight.
const diffConcurrency = 16

// DiffReport is, per object, what apply would do; sorted by ID.
type DiffReport struct {
	App       string
	Namespace string
	Objects   []engine.ObjectDiff
	Cluster   clusterid.Identity // the cluster compared with
	// Secrets is what apply would do with the generated secrets (taken in memory here).
	Secrets *SecretsReport
}

// Counts tallies the objects per change.
func (r *DiffReport) Counts() map[engine.Change]int {
	counts := map[engine.Change]int{}
	for _, d := range r.Objects {
		counts[d.Change]++
	}
	return counts
}

// Changed reports whether apply would change anything.
func (r *DiffReport) Changed() bool {
	for _, d := range r.Objects {
		switch d.Change {
		case engine.ChangeCreate, engine.ChangeUpdate, engine.ChangePrune:
			return true
		}
	}
	return false
}

// Diff is the diff phase: load the app, connect, and compare every object with a server-side
// dry-run apply of it.
func Diff(ctx context.Context, opts DiffOptions) (*DiffReport, error) {
	loaded, err := Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return nil, err
	}
	set := loaded.ApplySet()
	guard, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.Diff, opts.AddCluster)
	if err != nil {
		return nil, err
	}
	if _, err := guard.record(); err != nil {
		return nil, err
	}
	// As apply would: the cluster's generated values kept (in memory; secrets.yaml unchanged).
	loaded, adopted, err := adoptLiveSecrets(ctx, snapshot.New(c, set, snapshot.Options{}), loaded, SecretRotation{}, true)
	if err != nil {
		return nil, err
	}
	diffs, err := engine.Diff(ctx, c, set, loaded.Objects, opts.Prune, diffConcurrency)
	if err != nil {
		return nil, fmt.Errorf("diff app %s: %w", set.App, err)
	}
	return &DiffReport{App: set.App, Namespace: set.Namespace, Objects: diffs, Cluster: guard.Current, Secrets: adopted}, nil
}
