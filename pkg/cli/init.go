package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	opts := app.InitOptions{}
	cmd := &cobra.Command{
		Use:   "init APP_DIR --platform none",
		Short: "Create an app directory with app.yaml",
		Example: `  kfdeploy init myapp --platform none
  kfdeploy init gpu-lab --platform none --namespace ml --preset standard
  kfdeploy init nb --platform none --components core,jupyter`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if opts.Preset != "" && len(opts.Components) > 0 {
				return fmt.Errorf("--preset and --components both choose the components: pass one of them")
			}
			a, err := app.Init(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "created app %s in %s (namespace %s, components: %v)\nnext: cd %s && kfdeploy generate && kfdeploy apply\n",
				a.Metadata.Name, opts.Dir, a.Spec.Namespace, a.ComponentNames(), opts.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "platform to deploy onto: none (an existing cluster)")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", config.DefaultNamespace, "namespace of the platform")
	cmd.Flags().StringVar(&opts.Preset, "preset", "", "component set: minimal, standard or full")
	cmd.Flags().StringSliceVar(&opts.Components, "components", nil, "components to include (overrides --preset)")
	_ = cmd.MarkFlagRequired("platform")
	return cmd
}
