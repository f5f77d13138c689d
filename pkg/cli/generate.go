package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
)

// generateOptions are generate's resolved options.
type generateOptions struct {
	platform bool
	appDir   string
}

func newGenerateCommand(g *globalOptions) *cobra.Command {
	o := &generateOptions{}
	return &cobra.Command{
		Use:   "generate [k8s|platform|all]",
		Short: "Render the app's components into manifests/",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			platform, err := scope(args)
			if err != nil {
				return err
			}
			o.platform, o.appDir = platform, g.appDir
			return o.run(cmd.Context(), g.streams)
		},
	}
}

func (o *generateOptions) run(ctx context.Context, streams ioStreams) error {
	if o.platform {
		nothingForPlatform(streams.Out, "generate")
		return nil
	}
	res, err := app.Generate(ctx, o.appDir)
	if err != nil {
		return err
	}
	for _, c := range res.Components {
		fmt.Fprintf(streams.Out, "%s: %d objects → %s\n", c.Name, c.Objects, c.File)
	}
	writeNotices(streams.ErrOut, res.Warnings, res.Notes)
	return nil
}
