package cli

import (
	"os"

	"fmt"
	"golang.org/x/term"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/progress"
)

type applyFlags struct {
	timeout        time.Duration
	wait           bool
	prune          bool
	dryRun         string
	forceConflicts bool
	concurrency    int
	output         string
	skipPreflight  bool
	preflight      preflightFlags
}

func newApplyCommand(g *globalOptions) *cobra.Command {
	f := &applyFlags{}
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
			if ok, err := scope(g.streams.Out, "apply", args); !ok || err != nil {
				return err
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			loaded, err := app.Load(g.appDir)
			if err != nil {
				return err
			}
			out, rep, done := reportTarget(g, f.output)
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			started := time.Now()
			var res *kube.Result
			var runErr error
			if !f.skipPreflight {
				// Preflight's table goes where progress goes: stdout, or stderr with -o json.
				pfOut := g.streams.Out
				if f.output == "json" {
					pfOut = g.streams.ErrOut
				}
				runErr = f.preflight.beforeApply(cmd.Context(), c, loaded, opts.DryRun != kube.DryRunNone, pfOut)
			}
			if runErr == nil {
				res, runErr = app.Apply(cmd.Context(), c, loaded, opts, rep)
			}
			done()
			report := newRunReport("apply", loaded.ApplySet(), f.dryRun, res, started, runErr)
			if f.output == "json" {
				if err := report.writeJSON(out); err != nil {
					return err
				}
			} else if runErr == nil {
				fmt.Fprintln(out, report.summary())
			}
			return runErr
		},
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for CRDs and for objects to become ready")
	cmd.Flags().BoolVar(&f.wait, "wait", true, "wait until every object is ready")
	cmd.Flags().BoolVar(&f.prune, "prune", true, "delete objects of the app that are no longer in its manifests (PVCs and PVs are kept)")
	cmd.Flags().StringVar(&f.dryRun, "dry-run", "", "client: print what would be applied; server: let the API server validate without persisting")
	cmd.Flags().BoolVar(&f.forceConflicts, "force-conflicts", false, "take ownership of fields that another field manager owns")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 16, "objects applied at once within a level")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: text or json (counts, objects, duration)")
	cmd.Flags().BoolVar(&f.skipPreflight, "skip-preflight", false, "do not run the preflight checks before applying")
	f.preflight.addFlags(cmd.Flags())
	return cmd
}

func (f *applyFlags) options() (kube.ApplyOptions, error) {
	if err := validateOutput(f.output); err != nil {
		return kube.ApplyOptions{}, err
	}
	if err := f.preflight.validate(); err != nil {
		return kube.ApplyOptions{}, err
	}
	dry := kube.DryRun(f.dryRun)
	switch dry {
	case kube.DryRunNone, kube.DryRunClient, kube.DryRunServer:
	default:
		return kube.ApplyOptions{}, fmt.Errorf("--dry-run %q is not supported: use client or server", f.dryRun)
	}
	if f.concurrency < 1 || f.concurrency > 256 {
		return kube.ApplyOptions{}, fmt.Errorf("--concurrency %d is out of range: use 1 to 256", f.concurrency)
	}
	if f.timeout <= 0 {
		return kube.ApplyOptions{}, fmt.Errorf("--timeout must be positive, got %s", f.timeout)
	}
	return kube.ApplyOptions{
		DryRun:         dry,
		ForceConflicts: f.forceConflicts,
		Prune:          f.prune,
		Concurrency:    f.concurrency,
		Wait:           f.wait && dry == kube.DryRunNone,
		Timeout:        f.timeout,
	}, nil
}

// reportTarget returns where the result goes and the progress reporter: with -o json the
// document owns stdout and progress moves to stderr; on a terminal progress is a live line.
// done must be called before the result is printed.
func reportTarget(g *globalOptions, output string) (out io.Writer, rep progress.Reporter, done func()) {
	if output == "json" {
		return g.streams.Out, progress.NewLines(g.streams.ErrOut, true), func() {}
	}
	if f, ok := g.streams.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		live := progress.NewLive(g.streams.Out)
		return g.streams.Out, live, live.Close
	}
	return g.streams.Out, progress.NewLines(g.streams.Out, true), func() {}
}
