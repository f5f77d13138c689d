package cli

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
)

// preflightFlags are shared by `preflight` and `apply`, which runs preflight first.
type preflightFlags struct {
	nfsServer    string
	nfsPath      string
	gpuResources []string
	strict       bool
}

func (f *preflightFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.nfsServer, "nfs-server", "", "NFS server: preflight creates a PersistentVolume there for each claim that cannot bind otherwise (with --nfs-path; overrides spec.storage.nfs)")
	fs.StringVar(&f.nfsPath, "nfs-path", "", "exported directory on --nfs-server; each claim gets <nfs-path>/<namespace>-<claim>")
	fs.StringSliceVar(&f.gpuResources, "gpu-resource", nil, "extended resource counted as GPUs, repeatable (default: spec.gpu.resourceNames, else nvidia.com/gpu)")
	fs.BoolVar(&f.strict, "strict", false, "fail preflight on warnings too")
}

// validate checks the flags alone, before the app is read or the cluster is contacted.
func (f *preflightFlags) validate() error {
	if f.nfsServer != "" || f.nfsPath != "" {
		if f.nfsServer == "" || !strings.HasPrefix(f.nfsPath, "/") {
			return fmt.Errorf("--nfs-server and --nfs-path go together, and --nfs-path must be absolute (got server %q, path %q)", f.nfsServer, f.nfsPath)
		}
	}
	return nil
}

// settings resolves the flags; app.yaml fills in what they leave out (in pkg/app).
func (f *preflightFlags) settings() app.PreflightSettings {
	s := app.PreflightSettings{GPUResourceNames: f.gpuResources, Strict: f.strict}
	if f.nfsServer != "" {
		s.NFS = &config.NFS{Server: f.nfsServer, Path: path.Clean(f.nfsPath)}
	}
	return s
}

// preflightOptions are the preflight command's raw flags and resolved options.
type preflightOptions struct {
	flags   preflightFlags
	output  string
	verbose bool
	app     app.PreflightOptions
}

func newPreflightCommand(g *globalOptions) *cobra.Command {
	o := &preflightOptions{}
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check that the cluster can run the app: version, permissions, GPUs, storage, namespace",
		Long: `preflight checks, before anything is applied, what made Kubeflow deployments "succeed" and
then sit broken:

  cluster      the API server answers and runs a supported version (v1.29–v1.37)
  permissions  every get/list/create/patch/delete that apply and delete need, per kind and
               namespace (SelfSubjectAccessReviews); the missing ones are listed
  gpu          GPUs allocatable and allocated per node against the app's GPU requests; GPU
               nodes without a device plugin, cordoned, NotReady or tainted
  storage      every PersistentVolumeClaim of the app can bind: a matching Available PV, a
               StorageClass that provisions, or the default StorageClass
  nfs          with --nfs-server/--nfs-path (or spec.storage.nfs): creates an NFS
               PersistentVolume, pre-bound by claimRef, for each claim that cannot bind
               otherwise. This is the one check that changes the cluster: only one the
               app knows (.kfdeploy/clusters.yaml), under the app's lock.
  namespace    the namespace is not Terminating; objects of the app that exist under another
               owner are listed

It exits 0 when nothing failed and 1 when a check failed (warnings too with --strict).
'kfdeploy apply' runs it first unless --skip-preflight.`,
		Example: `  kfdeploy preflight
  kfdeploy preflight --nfs-server 10.0.0.5 --nfs-path /nfs-data
  kfdeploy preflight -o json --strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.complete(g)
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	o.flags.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text or json (schema: see 'go doc github.com/kfdeploy/kfdeploy/pkg/preflight')")
	addVerboseFlag(cmd, &o.verbose)
	return cmd
}

func (o *preflightOptions) complete(g *globalOptions) {
	o.app = app.PreflightOptions{AppDir: g.appDir, Cluster: g.kube, Settings: o.flags.settings()}
}

func (o *preflightOptions) validate() error {
	if err := validateOutput(o.output); err != nil {
		return err
	}
	return o.flags.validate()
}

func (o *preflightOptions) run(ctx context.Context, streams ioStreams) error {
	rep, runErr := app.Preflight(ctx, o.app)
	if rep == nil {
		return runErr
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(streams.ErrOut, "warning: "+w)
	}
	var err error
	if o.output == outputJSON {
		err = printJSON(streams.Out, rep)
	} else {
		err = writePreflightTable(streams.Out, rep)
		if err == nil && o.verbose {
			err = writePhases(streams.Out, rep.Phases, rep.DurationSeconds)
		}
	}
	if err != nil {
		return err
	}
	return runErr
}

// writePreflightTable writes the report for people: one row per finding (CHECK, STATUS,
// FINDING), the remedy on the line below it, then a summary line.
func writePreflightTable(w io.Writer, r *preflight.Report) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tFINDING")
	for _, f := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Check, statusLabel(f.Status), oneLine(f.Finding))
		if f.Remedy != "" {
			fmt.Fprintf(tw, "\t\t↳ %s\n", oneLine(f.Remedy))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write preflight table: %w", err)
	}
	if len(r.CreatedVolumes) > 0 {
		names := make([]string, len(r.CreatedVolumes))
		for i, v := range r.CreatedVolumes {
			names[i] = v.Name
		}
		verb := "created PersistentVolumes"
		if r.CreatedVolumes[0].DryRun {
			verb = "would create PersistentVolumes (dry run)"
		}
		fmt.Fprintf(w, "%s: %s\n", verb, strings.Join(names, ", "))
	}
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "preflight %s (app %s, namespace %s): %d ok, %d %s, %d failed (%.1fs)\n",
		verdict, r.App, r.Namespace, r.Summary.OK, r.Summary.Warn, plural(r.Summary.Warn, "warning", "warnings"), r.Summary.Fail, r.DurationSeconds)
	return err
}

// statusLabel makes problems stand out in a column of "ok".
func statusLabel(s preflight.Status) string {
	if s == preflight.OK {
		return "ok"
	}
	return strings.ToUpper(string(s))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
