package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/version"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of kfdeploy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != outputJSON {
				return fmt.Errorf("--output %q is not supported: use json or leave it out", output)
			}
			info := version.Get()
			if output == outputJSON {
				return printJSON(g.streams.Out, info)
			}
			fmt.Fprintf(g.streams.Out, "kfdeploy %s (commit %s, %s, %s)\n", info.Version, info.GitCommit, info.GoVersion, info.Platform)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
