// Package cli holds the cobra commands: they parse flags, validate them, and call pkg/app.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// ErrChanges is what diff returns when apply would change something: exit status 1, with no
// message (main maps it).
var ErrChanges = errors.New("apply would change the cluster")

// AnnotationErrorExitCode on a command sets the exit status of every error of that command,
// flag errors included (diff: 2). main reads it.
const AnnotationErrorExitCode = "kfdeploy.dev/error-exit-code"

// globalOptions are the flags every command shares.
type globalOptions struct {
	streams genericiooptions.IOStreams
	appDir  string
	kube    *genericclioptions.ConfigFlags
}

// connect builds the cluster clients and checks that the API server answers.
func (g *globalOptions) connect(ctx context.Context) (*kube.Client, error) {
	if g.kube.APIServer == nil || *g.kube.APIServer == "" {
		raw, err := g.kube.ToRawKubeConfigLoader().RawConfig()
		if err == nil && len(raw.Clusters) == 0 {
			return nil, errors.New("no cluster configured: set KUBECONFIG, pass --kubeconfig FILE, or create ~/.kube/config")
		}
	}
	c, err := kube.NewClient(g.kube)
	if err != nil {
		return nil, err
	}
	if _, err := c.ServerVersion(ctx); err != nil {
		return nil, err
	}
	return c, nil
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

// scope checks the optional kfctl-style argument: k8s (the default), all, or platform.
// It returns false when there is nothing to do for the platform.
func scope(out io.Writer, verb string, args []string) (bool, error) {
	if len(args) == 0 {
		return true, nil
	}
	switch args[0] {
	case "k8s", "all":
		return true, nil
	case "platform":
		fmt.Fprintf(out, "platform none: no platform resources to %s\n", verb)
		return false, nil
	}
	return false, fmt.Errorf("unknown argument %q: expected k8s, platform or all", args[0])
}
