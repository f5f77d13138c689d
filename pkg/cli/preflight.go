package cli

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/preflight"
)

// preflightTimeout bounds a whole preflight run: its checks take seconds even on large
// clusters, and apply should not hang on a stuck check.
const preflightTimeout = 2 * time.Minute

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

// options merges the flags with app.yaml: flags win.
func (f *preflightFlags) options(loaded *app.Loaded, dryRun bool) (preflight.Options, error) {
	opts := preflight.Options{App: loaded.App, Objects: loaded.Objects, GPUResourceNames: loaded.App.GPUResourceNames(), DryRun: dryRun}
	if s := loaded.App.Spec.Storage; s != nil && s.NFS != nil {
		opts.NFS = s.NFS
	}
	if err := f.validate(); err != nil {
		return preflight.Options{}, err
	}
	if f.nfsServer != "" {
		opts.NFS = &config.NFS{Server: f.nfsServer, Path: path.Clean(f.nfsPath)}
	}
	if len(f.gpuResources) > 0 {
		opts.GPUResourceNames = f.gpuResources
	}
	return opts, nil
}

// run runs every check and judges the result (warnings fail with --strict).
func (f *preflightFlags) run(ctx context.Context, c *kube.Client, loaded *app.Loaded, opts preflight.Options) (*preflight.Report, error) {
	checks, err := preflight.New(c, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	rep := preflight.Run(ctx, checks)
	rep.App, rep.Namespace = loaded.App.Metadata.Name, loaded.App.Spec.Namespace
	rep.Passed = !rep.Failed(f.strict)
	return &rep, nil
}

// failure is the error of a failed preflight.
func (f *preflightFlags) failure(rep *preflight.Report, hint string) error {
	what := fmt.Sprintf("%d failed", rep.Summary.Fail)
	if f.strict && rep.Summary.Warn > 0 {
		what += fmt.Sprintf(", %d warnings (--strict)", rep.Summary.Warn)
	}
	return fmt.Errorf("preflight failed: %s; %s", what, hint)
}

// beforeApply runs preflight for apply: the table goes where apply's progress goes, and a
// failure stops apply before any object is written.
func (f *preflightFlags) beforeApply(ctx context.Context, c *kube.Client, loaded *app.Loaded, dryRun bool, w io.Writer) error {
	opts, err := f.options(loaded, dryRun)
	if err != nil {
		return err
	}
	rep, err := f.run(ctx, c, loaded, opts)
	if err != nil {
		return err
	}
	if err := preflight.WriteTable(w, rep); err != nil {
		return err
	}
	if !rep.Passed {
		return f.failure(rep, "nothing was applied: fix the findings above, or rerun with --skip-preflight")
	}
	return nil
}

func newPreflightCommand(g *globalOptions) *cobra.Command {
	f := &preflightFlags{}
	var output string
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
               otherwise. This is the one check that changes the cluster.
  namespace    the namespace is not Terminating; objects of the app that exist under another
               owner are listed

It exits 0 when nothing failed and 1 when a check failed (warnings too with --strict).
'kfdeploy apply' runs it first unless --skip-preflight.`,
		Example: `  kfdeploy preflight
  kfdeploy preflight --nfs-server 10.0.0.5 --nfs-path /nfs-data
  kfdeploy preflight -o json --strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			if err := f.validate(); err != nil {
				return err
			}
			loaded, err := app.Load(g.appDir)
			if err != nil {
				return err
			}
			opts, err := f.options(loaded, false)
			if err != nil {
				return err
			}
			// No g.connect: an unreachable API server is the cluster check's finding.
			c, err := kube.NewClient(g.kube)
			if err != nil {
				return err
			}
			rep, err := f.run(cmd.Context(), c, loaded, opts)
			if err != nil {
				return err
			}
			if output == "json" {
				err = preflight.WriteJSON(g.streams.Out, rep)
			} else {
				err = preflight.WriteTable(g.streams.Out, rep)
			}
			if err != nil {
				return err
			}
			if !rep.Passed {
				return f.failure(rep, "see the findings and their remedies")
			}
			return nil
		},
	}
	f.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json (schema: see 'go doc github.com/kfdeploy/kfdeploy/pkg/preflight')")
	return cmd
}
