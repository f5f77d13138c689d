package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
)

// initOptions are init's flags, which are the init phase's options as they are.
type initOptions struct {
	app app.InitOptions
}

func newInitCommand(g *globalOptions) *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init APP_DIR --platform none",
		Short: "Create an app directory with app.yaml",
		Example: `  kfdeploy init myapp --platform none
  kfdeploy init gpu-lab --platform none --namespace ml --preset standard
  kfdeploy init nb --platform none --components core,jupyter`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.app.Dir = args[0]
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(g.streams)
		},
	}
	cmd.Flags().StringVar(&o.app.Platform, "platform", "", "platform to deploy onto: none (an existing cluster)")
	cmd.Flags().StringVar(&o.app.Namespace, "namespace", config.DefaultNamespace, "namespace of the platform")
	cmd.Flags().StringVar(&o.app.Preset, "preset", "", "component set: minimal, standard or full")
	cmd.Flags().StringSliceVar(&o.app.Components, "components", nil, "components to include (overrides --preset)")
	_ = cmd.MarkFlagRequired("platform")
	return cmd
}

func (o *initOptions) validate() error {
	if o.app.Preset != "" && len(o.app.Components) > 0 {
		return errors.New("--preset and --components both choose the components: pass one of them")
	}
	return nil
}

func (o *initOptions) run(streams ioStreams) error {
	a, err := app.Init(o.app)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "created app %s in %s (namespace %s, components: %v)\nnext: cd %s && kfdeploy generate && kfdeploy apply\n",
		a.Metadata.Name, o.app.Dir, a.Spec.Namespace, a.ComponentNames(), o.app.Dir)
	return nil
}
