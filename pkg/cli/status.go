package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
)

// statusOptions are status's raw flags and resolved options.
type statusOptions struct {
	output string
	app    app.StatusOptions
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the app's objects with their readiness, and the pods in its namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.app = app.StatusOptions{AppDir: g.appDir, Cluster: g.kube}
			if o.output != "" && o.output != outputJSON {
				return fmt.Errorf("--output %q is not supported: use json or leave it out", o.output)
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: json")
	return cmd
}

// statusDocument is status's -o json document.
type statusDocument struct {
	App       string                   `json:"app"`
	Namespace string                   `json:"namespace"`
	Objects   []readiness.ObjectStatus `json:"objects"`
	Pods      []readiness.PodStatus    `json:"pods"`
	URLs      *app.URLs                `json:"urls,omitempty"`
}

func (o *statusOptions) run(ctx context.Context, streams ioStreams) error {
	rep, err := app.Status(ctx, o.app)
	if err != nil {
		return err
	}
	if o.output == outputJSON {
		return printJSON(streams.Out, statusDocument{App: rep.App, Namespace: rep.Namespace, Objects: rep.Objects, Pods: rep.Pods, URLs: rep.URLs})
	}
	w := newTable(streams.Out)
	fmt.Fprintln(w, "OBJECT\tSTATUS\tMESSAGE")
	for _, o := range rep.Objects {
		fmt.Fprintf(w, "%s\t%s\t%s\n", o.ID, o.Status, o.Message)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "POD\tREADY\tSTATUS\tNODE")
	for _, p := range rep.Pods {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Ready, p.Phase, p.Node)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return writeURLs(streams.Out, rep.URLs)
}
