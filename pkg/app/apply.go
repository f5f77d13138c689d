package app

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// Cluster is how a phase reaches the cluster: kubectl's connection settings (cli-runtime's
// RESTClientGetter, e.g. its ConfigFlags). Each phase builds one kube.Client from it and hands
// that client to everything of the run that talks to the API server.
type Cluster = genericclioptions.RESTClientGetter

// Loaded is an app read from its directory: its document and generated objects with secrets
// resolved, ready to apply.
type Loaded struct {
	Dir     string
	App     *config.App
	Objects []*unstructured.Unstructured
	Files   map[manifest.ID]string // each object's file, "manifests/NAME.yaml"
}

// ApplySet is the app's inventory in the cluster.
func (l *Loaded) ApplySet() kube.ApplySet {
	return kube.ApplySet{App: l.App.Metadata.Name, Namespace: l.App.Spec.Namespace}
}

// Load reads app.yaml and the generated manifests, with generated passwords filled in.
func Load(appDir string) (*Loaded, error) {
	app, err := config.Load(appDir)
	if err != nil {
		return nil, err
	}
	objs, files, err := loadManifests(appDir)
	if err != nil {
		return nil, err
	}
	store, err := secrets.Load(appDir)
	if err != nil {
		return nil, err
	}
	objs, err = store.Resolve(objs)
	if err != nil {
		return nil, err
	}
	return &Loaded{Dir: appDir, App: app, Objects: objs, Files: files}, nil
}

// ApplyOptions are the resolved choices of an apply.
type ApplyOptions struct {
	AppDir  string
	Cluster Cluster
	Apply   kube.ApplyOptions
	// SkipPreflight applies without running the preflight checks first.
	SkipPreflight bool
	Preflight     PreflightSettings
	Progress      kube.Reporter
	// PreflightDone, when set, is called with the preflight report before anything is
	// applied, so that it can be shown while apply goes on.
	PreflightDone func(*preflight.Report)
}

// ApplyReport is what an apply did.
type ApplyReport struct {
	App       string
	Namespace string
	DryRun    kube.DryRun
	Preflight *preflight.Report // nil with SkipPreflight, or when apply stopped before it
	Result    *kube.Result      // nil when apply stopped before writing
	Duration  time.Duration
}

// Apply is the apply phase: load the app (manifests no older than app.yaml), connect, run
// preflight (a failure stops here, before any object is written), then server-side apply,
// prune and wait. The report is returned with the error too, for what was done until then.
func Apply(ctx context.Context, opts ApplyOptions) (*ApplyReport, error) {
	started := time.Now()
	loaded, err := Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	set := loaded.ApplySet()
	rep := &ApplyReport{App: set.App, Namespace: set.Namespace, DryRun: opts.Apply.DryRun}
	defer func() { rep.Duration = time.Since(started) }()
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return rep, err
	}
	if !opts.SkipPreflight {
		settings := opts.Preflight
		settings.DryRun = opts.Apply.DryRun != kube.DryRunNone
		rep.Preflight, err = runPreflight(ctx, c, loaded, settings)
		if err != nil {
			return rep, err
		}
		if opts.PreflightDone != nil {
			opts.PreflightDone(rep.Preflight)
		}
		if !rep.Preflight.Passed {
			return rep, preflightFailure(rep.Preflight, settings.Strict, "nothing was applied: fix the findings above, or rerun with --skip-preflight")
		}
	}
	rep.Result, err = c.Apply(ctx, set, loaded.Objects, opts.Apply, opts.Progress)
	if err != nil {
		return rep, fmt.Errorf("apply app %s: %w", set.App, err)
	}
	return rep, nil
}
