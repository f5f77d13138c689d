package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
)

// preflightTimeout bounds a whole preflight run: its checks take seconds even on large
// clusters, and apply should not hang on a stuck check.
const preflightTimeout = 2 * time.Minute

// PreflightSettings override what app.yaml says for preflight (flags win).
type PreflightSettings struct {
	NFS              *config.NFS // nil: spec.storage.nfs of app.yaml
	GPUResourceNames []string    // empty: spec.gpu.resourceNames, else nvidia.com/gpu
	Strict           bool        // warnings fail too
	DryRun           bool        // create nothing (apply --dry-run)
}

// PreflightOptions are the resolved choices of a preflight run.
type PreflightOptions struct {
	AppDir   string
	Cluster  Cluster
	Settings PreflightSettings
}

// Preflight is the preflight phase: load the app and run every check. The client is built
// without a first contact: an unreachable API server is the cluster check's finding, not an
// error. With NFS configured, preflight creates PersistentVolumes: like every run that writes,
// it first checks the cluster's identity (a refusal is the error, and nothing is created) and
// creates them under the app's lock. A failed run returns its report and an error.
func Preflight(ctx context.Context, opts PreflightOptions) (*preflight.Report, error) {
	loaded, err := Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	c, err := kube.NewClient(opts.Cluster)
	if err != nil {
		return nil, err
	}
	settings := opts.Settings
	if nfsFor(loaded, settings) != nil && !settings.DryRun {
		if _, err := c.ServerVersion(ctx); err != nil {
			// Nothing can be created: the cluster check says why, the nfs check does not run.
			settings.DryRun = true
		} else {
			set := loaded.ApplySet()
			if _, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.CreateVolumes, false); err != nil {
				return nil, fmt.Errorf("%w (preflight without --nfs-server checks without creating anything)", err)
			}
			held, err := lock.Acquire(ctx, c, set)
			if err != nil {
				return nil, err
			}
			defer held.Release()
			ctx = held.Context()
		}
	}
	snap := engine.NewSnapshot(c, loaded.ApplySet(), loaded.Objects, snapshot.Options{})
	rep, err := runPreflight(ctx, c, snap, loaded, settings)
	if err != nil {
		return nil, err
	}
	rep.Warnings = loaded.Warnings
	if !rep.Passed {
		return rep, preflightFailure(rep, settings.Strict, "see the findings and their remedies")
	}
	return rep, nil
}

// nfsFor is the NFS server preflight creates volumes on: the flags', else app.yaml's, else nil.
func nfsFor(loaded *Loaded, s PreflightSettings) *config.NFS {
	if s.NFS != nil {
		return s.NFS
	}
	if st := loaded.App.Spec.Storage; st != nil {
		return st.NFS
	}
	return nil
}

// runPreflight runs the checks for a loaded app, reading through snap, and judges the result.
func runPreflight(ctx context.Context, c *kube.Client, snap *engine.Snapshot, loaded *Loaded, s PreflightSettings) (*preflight.Report, error) {
	opts := preflight.Options{App: loaded.App, Objects: loaded.Objects, Files: loaded.Files, GPUResourceNames: loaded.App.GPUResourceNames(), DryRun: s.DryRun,
		NFS: nfsFor(loaded, s), Snapshot: snap}
	if len(s.GPUResourceNames) > 0 {
		opts.GPUResourceNames = s.GPUResourceNames
	}
	checks, err := preflight.New(c, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	rep := preflight.Run(ctx, checks)
	rep.App, rep.Namespace = loaded.App.Metadata.Name, loaded.App.Spec.Namespace
	rep.Passed = !rep.Failed(s.Strict)
	return &rep, nil
}

// preflightFailure is the error of a failed preflight run.
func preflightFailure(rep *preflight.Report, strict bool, hint string) error {
	what := fmt.Sprintf("%d failed", rep.Summary.Fail)
	if strict && rep.Summary.Warn > 0 {
		what += fmt.Sprintf(", %d warnings (--strict)", rep.Summary.Warn)
	}
	return fmt.Errorf("preflight failed: %s; %s", what, hint)
}
