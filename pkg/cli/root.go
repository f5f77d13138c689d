// Package cli holds the cobra commands, one file each, in kubectl's shape: raw flag values
// (xxxFlags) → complete, which resolves them into the options of a pkg/app phase → validate,
// which finds every user error before any cluster call → run(ctx), which calls that one phase
// and renders its report (text or JSON). Nothing else here talks to the cluster; exit statuses
// are main's (see ErrChanges and AnnotationErrorExitCode).
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// ErrChanges is what diff returns when apply would change something: exit status 1, with no
// message (main maps it).
var ErrChanges = errors.New("apply would change the cluster")

// AnnotationErrorExitCode on a command sets the exit status of every error of that command,
// flag errors included (diff: 2). main reads it.
const AnnotationErrorExitCode = "kfdeploy.dev/error-exit-code"

// ioStreams are the command's stdin, stdout and stderr: commands never use os.Stdout.
type ioStreams = genericiooptions.IOStreams

// globalOptions are the flags every command shares.
type globalOptions struct {
	streams ioStreams
	appDir  string
	// kube are kubectl's connection flags; the phases of pkg/app build their one client from
	// them, so nothing here talks to the cluster.
	kube *genericclioptions.ConfigFlags
}

// NewRootCommand builds the kfdeploy command tree.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	g := &globalOptions{streams: streams, kube: kubeFlags()}
	root := &cobra.Command{
		Use:   "kfdeploy",
		Short: "Deploy a Kubeflow-style machine-learning platform onto any Kubernetes cluster",
		Long: `kfdeploy deploys a Kubeflow-style machine-learning platform onto a Kubernetes cluster and
tears it down again:

  kfdeploy init myapp --platform none   # create an app directory with app.yaml
  cd myapp
  kfdeploy generate k8s                 # render components into manifests/
  kfdeploy apply k8s                    # preflight, server-side apply, wait until ready
  kfdeploy delete k8s                   # remove what the app applied; keep data unless --purge`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)
	root.PersistentFlags().StringVar(&g.appDir, "app-dir", ".", "app directory (holding app.yaml)")
	g.kube.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newInitCommand(g),
		newGenerateCommand(g),
		newApplyCommand(g),
		newDeleteCommand(g),
		newDiffCommand(g),
		newStatusCommand(g),
		newVersionCommand(g),
		newComponentsCommand(g),
		newParamCommand(g),
		newPreflightCommand(g),
		newTopCommand(g),
		newTestCommand(g),
		newCACommand(g),
		newImagesCommand(g),
	)
	return root
}

// kubeFlags are kubectl's connection flags (cli-runtime's ConfigFlags) without --namespace,
// which kfdeploy takes from app.yaml, and without password and impersonation flags.
func kubeFlags() *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.Namespace = nil
	f.Impersonate, f.ImpersonateUID, f.ImpersonateGroup, f.ImpersonateUserExtra = nil, nil, nil, nil
	f.DisableCompression = nil
	return f
}

// scope checks the optional kfctl-style argument: k8s (the default), all, or platform. With
// platform none there are no platform resources: platform is true, and there is nothing to do.
func scope(args []string) (platform bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "k8s", "all":
		return false, nil
	case "platform":
		return true, nil
	}
	return false, fmt.Errorf("unknown argument %q: expected k8s, platform or all", args[0])
}

// nothingForPlatform says that platform none has no platform resources.
func nothingForPlatform(w io.Writer, verb string) {
	fmt.Fprintf(w, "platform none: no platform resources to %s\n", verb)
}

// addClusterFlag is the flag of apply, diff and delete that lets a run go to a cluster the app
// directory does not know yet, and records it there (pkg/clusterid).
func addClusterFlag(cmd *cobra.Command, add *bool) {
	cmd.Flags().BoolVar(add, "add-cluster", false, "go ahead through a kube context the app was not deployed through (or that now reaches another cluster), and record that cluster in .kfdeploy/clusters.yaml")
}

// addVerboseFlag is -v of apply, delete and preflight: at the end, a table of where the run's
// time went (always in -o json).
func addVerboseFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVarP(v, "verbose", "v", false, "print where the time went, phase by phase, at the end")
}
