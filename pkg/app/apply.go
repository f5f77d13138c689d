package app

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
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
	// Warnings are about the app directory itself (a secrets.yaml others may read), for the
	// commands that read it to show.
	Warnings []string
	// generated are the manifests as generate wrote them (placeholders in): what the generated
	// secrets are resolved from again once the cluster's values are known (adoptLiveSecrets),
	// without reading and decoding the manifests a second time. Objects shares the objects it
	// does not resolve; neither is changed in place.
	generated []*unstructured.Unstructured
}

// ApplySet is the app's inventory in the cluster.
func (l *Loaded) ApplySet() inventory.ApplySet {
	return inventory.ApplySet{App: l.App.Metadata.Name, Namespace: l.App.Spec.Namespace}
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
	resolved, err := store.Resolve(objs)
	if err != nil {
		return nil, err
	}
	return &Loaded{Dir: appDir, App: app, Objects: resolved, Files: files, Warnings: store.Warnings(), generated: objs}, nil
}

// ApplyOptions are the resolved choices of an apply.
type ApplyOptions struct {
	AppDir  string
	Cluster Cluster
	Apply   engine.ApplyOptions
	// SkipPreflight applies without running the preflight checks first.
	SkipPreflight bool
	Preflight     PreflightSettings
	Progress      engine.Reporter
	// PreflightDone, when set, is called with the preflight report before anything is
	// applied, so that it can be shown while apply goes on.
	PreflightDone func(*preflight.Report)
	// AddCluster applies through a kube context the app does not know yet (or that now
	// reaches another cluster), recording it in the app directory (see pkg/clusterid).
	AddCluster bool
	// Rotate names what apply replaces in the cluster with secrets.yaml's values, rather than
	// keep the cluster's (see adoptLiveSecrets).
	Rotate SecretRotation
}

// ApplyReport is what an apply did.
type ApplyReport struct {
	App       string
	Namespace string
	DryRun    engine.DryRun
	Preflight *preflight.Report // nil with SkipPreflight, or when apply stopped before it
	Result    *engine.Result    // nil when apply stopped before writing
	Duration  time.Duration
	// Cluster is the cluster applied to; RecordedCluster says that the app directory
	// recorded it by this run (a first apply, or --add-cluster).
	Cluster         clusterid.Identity
	RecordedCluster bool
	// URLs of the app's UIs after a successful apply (nil for a dry run or an app without a
	// gateway); URLsErr says why they could not be read, which does not fail the apply.
	URLs    *URLs
	URLsErr error
	// Secrets is what apply did with the generated secrets (nil when it stopped before).
	Secrets *SecretsReport
	// Phases is where the run's time went: connecting (load, cluster guard), the lock, the
	// generated secrets and certificates, each preflight check ("preflight NAME"; they run
	// concurrently), then the apply's phases (namespaces, plan, inventory, each level, prune,
	// wait).
	Phases []engine.Phase
}

// Apply is the apply phase: load the app (manifests no older than app.yaml), connect, check
// the cluster's identity, take the app's lock (held to the end: preflight's NFS volumes, the
// namespaces and every object are written under it), run preflight (a failure stops here,
// before any object is written), then server-side apply, prune and wait. A dry run takes no
// lock. The report is returned with the error too, for what was done until then.
func Apply(ctx context.Context, opts ApplyOptions) (rep *ApplyReport, err error) {
	started := time.Now()
	loaded, err := Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	set := loaded.ApplySet()
	rep = &ApplyReport{App: set.App, Namespace: set.Namespace, DryRun: opts.Apply.DryRun}
	defer func() {
		rep.Duration = time.Since(started)
		if rep.Preflight != nil {
			for _, p := range rep.Preflight.Phases {
				rep.Phases = append(rep.Phases, engine.Phase{Name: "preflight " + p.Name, Seconds: p.Seconds})
			}
		}
		if rep.Result != nil {
			rep.Phases = append(rep.Phases, rep.Result.Phases...)
		}
	}()
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return rep, err
	}
	guard, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.Apply, opts.AddCluster)
	if err != nil {
		return rep, err
	}
	rep.Cluster = guard.Current
	rep.Phases = append(rep.Phases, engine.NewPhase("connect", started))
	if opts.Apply.DryRun == engine.DryRunNone {
		lockStarted := time.Now()
		held, lockErr := lock.Acquire(ctx, c, set)
		if lockErr != nil {
			return rep, lockErr
		}
		defer held.Release()
		ctx = held.Context() // engine.Apply finds the lock there
		defer func() { err = held.Explain(err) }()
		rep.Phases = append(rep.Phases, engine.NewPhase("lock", lockStarted))
	}
	// One snapshot of the cluster for the whole run: the generated secrets, preflight, the plan
	// and the wait read through it, each list once.
	snap := engine.NewSnapshot(c, set, loaded.Objects, snapshot.Options{Status: opts.Apply.Wait})
	secretsStarted := time.Now()
	// Generated secrets: the cluster's values are kept and taken into secrets.yaml; the
	// gateway's certificate covers the nodes (livesecrets.go). A dry run writes no secrets.yaml.
	if loaded, rep.Secrets, err = adoptLiveSecrets(ctx, snap.Snapshot, loaded, opts.Rotate, opts.Apply.DryRun != engine.DryRunNone); err != nil {
		return rep, err
	}
	snap = snap.WithObjects(loaded.Objects)
	rep.Phases = append(rep.Phases, engine.NewPhase("secrets", secretsStarted))
	if !opts.SkipPreflight {
		settings := opts.Preflight
		settings.DryRun = opts.Apply.DryRun != engine.DryRunNone
		rep.Preflight, err = runPreflight(ctx, c, snap, loaded, settings)
		if err != nil {
			return rep, err
		}
		if len(rep.Preflight.CreatedVolumes) > 0 {
			snap.Forget(schema.GroupResource{Resource: "persistentvolumes"}) // the nfs check wrote some
		}
		if opts.PreflightDone != nil {
			opts.PreflightDone(rep.Preflight)
		}
		if !rep.Preflight.Passed {
			return rep, preflightFailure(rep.Preflight, settings.Strict, "nothing was applied: fix the findings above, or rerun with --skip-preflight")
		}
	}
	applyOpts := opts.Apply
	applyOpts.Snapshot = snap
	if applyOpts.DryRun == engine.DryRunNone {
		// Recorded before the first object is written, as the inventory is: an interrupted
		// first apply is still known to be on this cluster.
		if rep.RecordedCluster, err = guard.record(); err != nil {
			return rep, err
		}
		applyOpts.Cluster = guard.Current
	}
	rep.Result, err = engine.Apply(ctx, c, set, loaded.Objects, applyOpts, opts.Progress)
	if err != nil {
		return rep, fmt.Errorf("apply app %s: %w", set.App, err)
	}
	if opts.Apply.DryRun == engine.DryRunNone {
		rep.URLs, rep.URLsErr = appURLs(ctx, snap.Snapshot, set, !rep.Result.Wrote("Service"))
	}
	return rep, nil
}
