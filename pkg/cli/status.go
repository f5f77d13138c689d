package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the app's objects with their readiness, and the pods in its namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("--output %q is not supported: use json or leave it out", output)
			}
			a, err := config.Load(g.appDir)
			if err != nil {
				return err
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			set := kube.ApplySet{App: a.Metadata.Name, Namespace: a.Spec.Namespace}
			objs, err := c.Status(cmd.Context(), set)
			if errors.Is(err, kube.ErrNotFoundApp) {
				return fmt.Errorf("app %s is not deployed in namespace %s: run 'kfdeploy apply'", set.App, set.Namespace)
			}
			if err != nil {
				return err
			}
			pods, err := c.Pods(cmd.Context(), a.Spec.Namespace)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(g.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"app": set.App, "namespace": set.Namespace, "objects": objs, "pods": pods})
			}
			w := tabwriter.NewWriter(g.streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "OBJECT\tSTATUS\tMESSAGE")
			for _, o := range objs {
				fmt.Fprintf(w, "%s\t%s\t%s\n", o.ID, o.Status, o.Message)
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "POD\tREADY\tSTATUS\tNODE")
			for _, p := range pods {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Ready, p.Phase, p.Node)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
