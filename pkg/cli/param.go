package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/render"
)

func newParamCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "param",
		Short: "Show and change the parameters of the app's components in app.yaml",
		Long: `param edits spec.components[].params in app.yaml, keeping its comments and layout. Values
are checked against the component's parameters (see 'kfdeploy components show COMPONENT');
run 'kfdeploy generate' afterwards to render them.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newParamSetCommand(g), newParamUnsetCommand(g), newParamListCommand(g))
	return cmd
}

func newParamSetCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "set COMPONENT PARAM VALUE",
		Short: "Set a component's parameter in app.yaml",
		Long: `set writes PARAM: VALUE into the component's params in app.yaml. VALUE is read as YAML,
as app.yaml would hold it: 1 is a number, true a boolean, null null, '"1"' a string, '""' or an
empty argument the empty string, '[a, b]' a list and '{a: 1}' a map. Its type must match the
parameter's default, unless one of them is null. A value starting with '-' goes after '--'.`,
		Example: `  kfdeploy param set jupyter gpus 1
  kfdeploy param set jupyter storageClass '""'
  kfdeploy param set core namespaceLabels '{team: ml}'`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch, err := app.SetParam(g.appDir, args[0], args[1], args[2])
			if err != nil {
				return err
			}
			if !ch.Changed {
				fmt.Fprintf(g.streams.Out, "%s.%s = %s (unchanged: app.yaml already sets it)\n", ch.Component, ch.Param, render.JSONText(ch.Value))
				return nil
			}
			fmt.Fprintf(g.streams.Out, "%s.%s = %s (was %s); run 'kfdeploy generate' to render it\n",
				ch.Component, ch.Param, render.JSONText(ch.Value), was(ch))
			return nil
		},
	}
}

func newParamUnsetCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "unset COMPONENT PARAM",
		Short:   "Remove a component's parameter from app.yaml, so that its default applies",
		Example: `  kfdeploy param unset jupyter gpus`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch, err := app.UnsetParam(g.appDir, args[0], args[1])
			if err != nil {
				return err
			}
			if !ch.Changed {
				fmt.Fprintf(g.streams.Out, "%s.%s is not set in app.yaml: it has its default %s\n", ch.Component, ch.Param, render.JSONText(ch.Default))
				return nil
			}
			fmt.Fprintf(g.streams.Out, "%s.%s = %s, the default (was %s); run 'kfdeploy generate' to render it\n",
				ch.Component, ch.Param, render.JSONText(ch.Value), was(ch))
			return nil
		},
	}
}

// was describes the value before a change: "0, the default" or "2 in app.yaml".
func was(ch *app.ParamChange) string {
	if ch.PreviousSource == app.SourceDefault {
		return render.JSONText(ch.Previous) + ", the default"
	}
	return render.JSONText(ch.Previous) + " in app.yaml"
}

func newParamListCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list [COMPONENT]",
		Short: "List the parameters of the app's components: app.yaml's values over the defaults",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			component := ""
			if len(args) == 1 {
				component = args[0]
			}
			params, err := app.ListParams(g.appDir, component)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(g.streams.Out, params)
			}
			w := newTable(g.streams.Out)
			fmt.Fprintln(w, "COMPONENT\tPARAM\tVALUE\tSOURCE")
			for _, p := range params {
				source := p.Source
				if p.Unknown {
					source += " (not a parameter of the component: 'kfdeploy param unset' it)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Component, p.Param, render.JSONText(p.Value), source)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	return cmd
}
