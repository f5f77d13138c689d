package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
)

func newGenerateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "generate [k8s|platform|all]",
		Short: "Render the app's components into manifests/",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok, err := scope(g.streams.Out, "generate", args); !ok || err != nil {
				return err
			}
			res, err := app.Generate(cmd.Context(), g.appDir)
			if err != nil {
				return err
			}
			for _, c := range res.Components {
				fmt.Fprintf(g.streams.Out, "%s: %d objects → %s\n", c.Name, c.Objects, c.File)
			}
			return nil
		},
	}
}
