package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

// DeleteOptions are the resolved choices of a delete.
type DeleteOptions struct {
	Set      inventory.ApplySet // see DeleteTarget
	Cluster  Cluster
	Delete   engine.DeleteOptions
	Progress engine.Reporter
	// AppDir is the app directory when the target came from its app.yaml: the clusters it
	// knows are checked first (pkg/clusterid). "" with --app NAME: there is no record to check.
	AppDir string
	// AddCluster deletes through a kube context the app directory does not know.
	AddCluster bool
	// Confirm, when set, is shown what delete is about to do, on which cluster, before
	// anything is written; an error stops the delete.
	Confirm func(DeletePlan) error
}

// DeletePlan is what a delete is about to do and where, for a prompt or a notice.
type DeletePlan struct {
	App       string
	Namespace string
	Purge     bool
	Cluster   clusterid.Identity // the cluster the run reaches
	engine.DeletePlan
}

// DeleteReport is what a delete did.
type DeleteReport struct {
	App       string
	Namespace string
	DryRun    bool
	// NotDeployed: the cluster has no inventory of the app, so there was nothing to delete.
	NotDeployed bool
	Result      *engine.Result
	Duration    time.Duration
	Cluster     clusterid.Identity // the cluster deleted from
	// Phases is where the run's time went: connecting (cluster guard), then the delete.
	Phases []engine.Phase
}

// DeleteTarget names the app to delete: by name and namespace (no app directory needed), or
// from the app.yaml in appDir.
func DeleteTarget(appDir, name, namespace string) (inventory.ApplySet, error) {
	if name != "" || namespace != "" {
		if name == "" || namespace == "" {
			return inventory.ApplySet{}, errors.New("--app and --namespace go together: pass both to delete without the app directory")
		}
		if !config.ValidName(name) || !config.ValidName(namespace) {
			return inventory.ApplySet{}, fmt.Errorf("--app %q and --namespace %q must be DNS labels", name, namespace)
		}
		return inventory.ApplySet{App: name, Namespace: namespace}, nil
	}
	a, err := config.Load(appDir)
	if err != nil {
		return inventory.ApplySet{}, fmt.Errorf("%w (or pass --app NAME --namespace NS)", err)
	}
	return inventory.ApplySet{App: a.Metadata.Name, Namespace: a.Spec.Namespace}, nil
}

// Delete is the delete phase: connect, check the cluster's identity against the app
// directory, then remove the app's objects as recorded in the cluster's inventory, so it needs
// no app directory. The app's lock is taken after the confirmation (a prompt may wait for a
// long time) and before anything is written (engine.Delete). A missing inventory is not an error.
func Delete(ctx context.Context, opts DeleteOptions) (*DeleteReport, error) {
	started := time.Now()
	set := opts.Set
	rep := &DeleteReport{App: set.App, Namespace: set.Namespace, DryRun: opts.Delete.DryRun}
	defer func() { rep.Duration = time.Since(started) }()
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return rep, err
	}
	if opts.AppDir != "" {
		guard, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.Delete, opts.AddCluster)
		if err != nil {
			return rep, err
		}
		if _, err := guard.record(); err != nil {
			return rep, err
		}
		rep.Cluster = guard.Current
	} else if rep.Cluster, err = c.ClusterIdentity(ctx); err != nil {
		return rep, err
	}
	kopts := opts.Delete
	if opts.Confirm != nil {
		kopts.Confirm = func(p engine.DeletePlan) error {
			return opts.Confirm(DeletePlan{App: set.App, Namespace: set.Namespace, Purge: kopts.Purge, Cluster: rep.Cluster, DeletePlan: p})
		}
	}
	rep.Phases = append(rep.Phases, engine.NewPhase("connect", started))
	deleting := time.Now()
	rep.Result, err = engine.Delete(ctx, c, set, kopts, opts.Progress)
	rep.Phases = append(rep.Phases, engine.NewPhase("delete", deleting))
	if errors.Is(err, inventory.ErrNotFound) {
		rep.NotDeployed = true
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("delete app %s in namespace %s: %w", set.App, set.Namespace, err)
	}
	return rep, nil
}
