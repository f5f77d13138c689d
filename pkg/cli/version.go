package cli

import (
	"encoding/json"
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
			info := version.Get()
			switch output {
			case "":
				fmt.Fprintf(g.streams.Out, "kfdeploy %s (commit %s, %s, %s)\n", info.Version, info.GitCommit, info.GoVersion, info.Platform)
			case "json":
				enc := json.NewEncoder(g.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			default:
				return fmt.Errorf("--output %q is not supported: use json or leave it out", output)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
