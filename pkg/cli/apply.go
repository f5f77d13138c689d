package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
)

// applyFlags are apply's raw flag values.
type applyFlags struct {
	timeout        time.Duration
	wait           bool
	prune          bool
	dryRun         string
	forceConflicts bool
	concurrency    int
	output         string
	skipPreflight  bool
	skipUnchanged  bool
	preflight      preflightFlags
	addCluster     bool
	rotateSecrets  []string
	rotateCA       bool
	verbose        bool
}

// applyOptions are apply's resolved options.
type applyOptions struct {
	flags    applyFlags
	platform bool // `apply platform`: nothing to do with platform none
	app      app.ApplyOptions
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	o := &applyOptions{}
	f := &o.flags
	cmd := &cobra.Command{
		Use:   "apply [k8s|platform|all]",
		Short: "Apply the generated manifests to the cluster and wait until they are ready",
		Long: `apply reads manifests/ (run 'kfdeploy generate' first: apply refuses manifests older than
app.yaml), then server-side applies them with field manager "kfdeploy": namespaces and CRDs
first, then configuration, workloads, webhooks and custom resources. It records the app's
objects in an ApplySet inventory in the cluster, prunes objects the app no longer has, and
waits until every object is ready.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(g, args); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "one deadline for the whole apply: CRDs, webhook and APIService gates, and readiness")
	cmd.Flags().BoolVar(&f.wait, "wait", true, "wait until every object is ready")
	cmd.Flags().BoolVar(&f.prune, "prune", true, "delete objects of the app that are no longer in its manifests (PVCs and PVs are kept)")
	cmd.Flags().StringVar(&f.dryRun, "dry-run", "", "client: print what would be applied; server: let the API server validate without persisting")
	cmd.Flags().BoolVar(&f.forceConflicts, "force-conflicts", false, "take ownership of fields that another field manager owns")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 16, "objects applied at once within a level")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: text or json (counts, objects, duration)")
	cmd.Flags().BoolVar(&f.skipPreflight, "skip-preflight", false, "do not run the preflight checks before applying")
	cmd.Flags().BoolVar(&f.skipUnchanged, "skip-unchanged", true,
		"send nothing for an object whose content is what kfdeploy applied last and that no other field manager wrote since; false sends every object")
	f.preflight.addFlags(cmd.Flags())
	addClusterFlag(cmd, &f.addCluster)
	cmd.Flags().StringArrayVar(&f.rotateSecrets, "rotate-secret", nil,
		"NAMESPACE/NAME of a generated Secret to replace with secrets.yaml's values (repeatable); without it apply keeps what the cluster holds and takes it into secrets.yaml")
	cmd.Flags().BoolVar(&f.rotateCA, "rotate-ca", false,
		"make a new CA of the app (name-constrained) and serve a certificate from it; users must then trust the new CA (kfdeploy ca)")
	addVerboseFlag(cmd, &f.verbose)
	return cmd
}

// complete resolves the flags into the apply phase's options.
func (o *applyOptions) complete(g *globalOptions, args []string) error {
	f := &o.flags
	platform, err := scope(args)
	if err != nil {
		return err
	}
	o.platform = platform
	dry := engine.DryRun(f.dryRun)
	o.app = app.ApplyOptions{
		AppDir:  g.appDir,
		Cluster: g.kube,
		Apply: engine.ApplyOptions{
			DryRun:         dry,
			ForceConflicts: f.forceConflicts,
			Prune:          f.prune,
			Concurrency:    f.concurrency,
			Wait:           f.wait && dry == engine.DryRunNone,
			Timeout:        f.timeout,
			SendAll:        !f.skipUnchanged,
		},
		SkipPreflight: f.skipPreflight,
		Preflight:     f.preflight.settings(),
		AddCluster:    f.addCluster,
		Rotate:        app.SecretRotation{Secrets: f.rotateSecrets, CA: f.rotateCA},
	}
	return nil
}

// validate finds every user error before the cluster is contacted.
func (o *applyOptions) validate() error {
	f := &o.flags
	if err := validateOutput(f.output); err != nil {
		return err
	}
	switch o.app.Apply.DryRun {
	case engine.DryRunNone, engine.DryRunClient, engine.DryRunServer:
	default:
		return fmt.Errorf("--dry-run %q is not supported: use client or server", f.dryRun)
	}
	if f.concurrency < 1 || f.concurrency > 256 {
		return fmt.Errorf("--concurrency %d is out of range: use 1 to 256", f.concurrency)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", f.timeout)
	}
	return f.preflight.validate()
}

// run calls the apply phase and prints its report.
func (o *applyOptions) run(ctx context.Context, streams ioStreams) error {
	if o.platform {
		nothingForPlatform(streams.Out, "apply")
		return nil
	}
	// Progress, and preflight's table, go to stdout, or to stderr with -o json.
	w, rep, done := progressTarget(streams, o.flags.output)
	opts := o.app
	opts.Progress = rep
	opts.PreflightDone = func(r *preflight.Report) { _ = writePreflightTable(w, r) }
	report, runErr := app.Apply(ctx, opts)
	done()
	if report == nil {
		return runErr
	}
	writeSecretsReport(w, report.Secrets)
	if report.RecordedCluster {
		fmt.Fprintf(w, "recorded %s in %s\n", report.Cluster, filepath.Join(clusterid.StateDir, clusterid.StateFile))
	}
	run := newRunReport("apply", report.App, report.Namespace, string(report.DryRun), report.Result, report.Phases, report.Duration, runErr)
	if o.flags.output == outputJSON {
		if err := printJSON(streams.Out, run); err != nil {
			return err
		}
	} else if runErr == nil {
		if o.flags.verbose {
			if err := writePhases(streams.Out, run.Phases, run.DurationSeconds); err != nil {
				return err
			}
		}
		fmt.Fprintln(streams.Out, run.summary())
		if report.URLsErr != nil {
			fmt.Fprintf(streams.Out, "\nThe UIs' URLs could not be read: %v (run 'kfdeploy status' later)\n", report.URLsErr)
		}
		if err := writeURLs(streams.Out, report.URLs); err != nil {
			return err
		}
	}
	return runErr
}
