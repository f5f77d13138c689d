package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/smoketest"
)

// testOptions are the flags of `kfdeploy test`.
type testOptions struct {
	g       *globalOptions
	output  string
	app     app.TestOptions
	images  map[string]*string
	timeout time.Duration
}

func newTestCommand(g *globalOptions) *cobra.Command {
	o := &testOptions{g: g, images: map[string]*string{}}
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run small real workloads against the app's components and report pass or fail",
		Long: `test checks that the deployed app can run what it is for, as 'helm test' does for a chart.
For each component the app has, it runs a small workload in the app's namespace, waits for it,
reports passed or failed with the reason the cluster gives, and deletes it:

  tf-job-operator  a TFJob whose single worker requests a GPU (--gpus of --gpu-resource) and
                   checks that the GPU is visible in its container (device files, nvidia-smi)
  argo             a workflow of two steps: the first writes an output parameter, the second
                   checks that it got it
  katib            an experiment: random search, 3 trials, each a Job printing its metric
                   (accuracy=<value>) for Katib's StdOut collector

Components the app lacks are reported as skipped; an app with none of them has nothing to test,
which fails unless --allow-nothing. A failure names the scheduler's message for
a pod that cannot be scheduled, the controller's condition for a failed job, or what was awaited
on a timeout. The workloads are labelled kfdeploy.dev/test-run=<run>; --keep leaves them for
debugging, and the next run removes them. Exit status 1 when a workload failed.`,
		Example: `  kfdeploy test
  kfdeploy test --gpus 2 --timeout 10m -o json
  kfdeploy test --tfjob-image registry.local/library/busybox:1.37.0 --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output format: text or json (schema: see 'go doc github.com/kfdeploy/kfdeploy/pkg/smoketest Report')")
	f.Int64Var(&o.app.GPUs, "gpus", 1, "GPUs the TFJob's worker requests")
	f.StringVar(&o.app.GPUResource, "gpu-resource", "", "extended resource the TFJob's worker requests (default: the first of spec.gpu.resourceNames, else nvidia.com/gpu)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for all workloads")
	f.DurationVar(&o.app.PendingTimeout, "pending-timeout", time.Minute, "how long a pod may stay unschedulable or unable to start its container before its workload fails")
	f.BoolVar(&o.app.Keep, "keep", false, "keep the workloads for debugging (the next run removes them)")
	f.BoolVar(&o.app.AllowNothing, "allow-nothing", false, "pass when the app has none of the components test has a workload for")
	for _, w := range []struct{ name, what string }{
		{"tfjob", "the TFJob's worker"},
		{"workflow", "the workflow's steps"},
		{"experiment", "the experiment's trials"},
	} {
		o.images[w.name] = f.String(w.name+"-image", smoketest.DefaultImage, "image of "+w.what+" (needs sh, echo; the TFJob's also ls or nvidia-smi)")
	}
	return cmd
}

// Validate checks the flags before anything is read or contacted.
func (o *testOptions) Validate() error {
	if err := validateOutput(o.output); err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	if o.app.PendingTimeout < 0 {
		return fmt.Errorf("--pending-timeout must not be negative, got %s", o.app.PendingTimeout)
	}
	if o.app.GPUs < 1 {
		return fmt.Errorf("--gpus must be at least 1, got %d", o.app.GPUs)
	}
	o.app.Timeout = o.timeout
	o.app.Images = map[string]string{}
	for name, image := range o.images {
		if strings.TrimSpace(*image) == "" {
			return fmt.Errorf("--%s-image must not be empty", name)
		}
		o.app.Images[name] = *image
	}
	return nil
}

// Run runs the workloads and prints the report; a failed workload is exit status 1.
func (o *testOptions) Run(ctx context.Context) error {
	o.app.AppDir, o.app.Cluster = o.g.appDir, o.g.kube
	rep, runErr := app.Test(ctx, o.app)
	if rep == nil {
		return runErr
	}
	var err error
	if o.output == "json" {
		err = printJSON(o.g.streams.Out, rep)
	} else {
		err = writeTestTable(o.g.streams.Out, rep)
	}
	if runErr != nil {
		return runErr // interrupted: main reports it with exit status 130
	}
	if err != nil {
		return fmt.Errorf("write the test report: %w", err)
	}
	if !rep.Passed && rep.NothingToTest {
		var lacked []string
		for _, r := range rep.Results {
			lacked = append(lacked, r.Component)
		}
		return fmt.Errorf("test of app %s: nothing to test: the app has none of %s; add one to app.yaml, or pass --allow-nothing to accept that", rep.App, strings.Join(lacked, ", "))
	}
	if !rep.Passed {
		var failed []string
		for _, r := range rep.Results {
			if r.Status == smoketest.Failed {
				failed = append(failed, r.Workload+" ("+r.Component+")")
			}
		}
		return fmt.Errorf("test of app %s in namespace %s failed: %s; see the reasons above", rep.App, rep.Namespace, strings.Join(failed, ", "))
	}
	return nil
}

func writeTestTable(w io.Writer, rep *smoketest.Report) error {
	for _, l := range rep.Leftovers {
		if _, err := fmt.Fprintf(w, "removed leftover %s\n", l); err != nil {
			return err
		}
	}
	if rep.LeftoverError != "" {
		if _, err := fmt.Fprintf(w, "warning: leftovers of earlier runs: %s\n", rep.LeftoverError); err != nil {
			return err
		}
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "WORKLOAD\tCOMPONENT\tSTATUS\tTIME\tRESULT")
	var notes []string
	for _, r := range rep.Results {
		took := ""
		if r.Status != smoketest.Skipped {
			took = fmt.Sprintf("%.1fs", r.DurationSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Workload, r.Component, r.Status, took, r.Reason)
		switch r.Cleanup {
		case "", "deleted":
		case "kept":
			notes = append(notes, fmt.Sprintf("kept %s %s (the next 'kfdeploy test' removes it)", r.Kind, r.Object))
		default:
			notes = append(notes, "cleanup: "+r.Cleanup)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	s := rep.Summary
	_, err := fmt.Fprintf(w, "test %s in namespace %s: %d passed, %d failed, %d skipped (%.1fs)\n", rep.App, rep.Namespace, s.Passed, s.Failed, s.Skipped, rep.DurationSeconds)
	return err
}
