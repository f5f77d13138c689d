package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

// diffExitError is diff's exit status for errors, as kubectl diff's: 0 no changes, 1 changes
// (ErrChanges), 2 error; usable as a CI gate.
const diffExitError = "2"

func newDiffCommand(g *globalOptions) *cobra.Command {
	var (
		output string
		prune  bool
	)
	cmd := &cobra.Command{
		Use:   "diff [k8s|all]",
		Short: "Show what apply would change: live state against a server-side dry run",
		Long: `diff shows, per object, a unified diff between the live object and what apply would make of
it (a server-side dry-run apply), objects apply would create, and members it would prune.
Secret values are redacted. Exit status: 0 nothing would change, 1 something would, 2 error.`,
		Args:        cobra.MaximumNArgs(1),
		Annotations: map[string]string{AnnotationErrorExitCode: diffExitError},
		RunE: func(cmd *cobra.Command, args []string) error {
			fail := func(err error) error { return err }
			if ok, err := scope(g.streams.Out, "diff", args); !ok || err != nil {
				return err
			}
			if output != "" && output != "json" && output != "text" {
				return fail(fmt.Errorf("--output %q is not supported: use text or json", output))
			}
			loaded, err := app.Load(g.appDir)
			if err != nil {
				return fail(err)
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return fail(err)
			}
			diffs, err := app.Diff(cmd.Context(), c, loaded, prune)
			if err != nil {
				return fail(err)
			}
			counts := map[kube.Change]int{}
			for _, d := range diffs {
				counts[d.Change]++
			}
			changed := counts[kube.ChangeCreate] + counts[kube.ChangeUpdate] + counts[kube.ChangePrune]
			if output == "json" {
				enc := json.NewEncoder(g.streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"app": loaded.App.Metadata.Name, "namespace": loaded.App.Spec.Namespace,
					"changed": changed > 0, "counts": counts, "objects": diffs}); err != nil {
					return fail(err)
				}
			} else {
				for _, d := range diffs {
					if d.Change == kube.ChangeNone {
						continue
					}
					fmt.Fprintf(g.streams.Out, "# %s: %s", d.ID, d.Change)
					if d.Note != "" {
						fmt.Fprintf(g.streams.Out, " (%s)", d.Note)
					}
					fmt.Fprintln(g.streams.Out)
					fmt.Fprint(g.streams.Out, d.Diff)
				}
				fmt.Fprintf(g.streams.Out, "%d to create, %d to update, %d to prune, %d kept, %d unchanged\n",
					counts[kube.ChangeCreate], counts[kube.ChangeUpdate], counts[kube.ChangePrune], counts[kube.ChangeKeep], counts[kube.ChangeNone])
			}
			if changed > 0 {
				return ErrChanges
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	cmd.Flags().BoolVar(&prune, "prune", true, "include the members apply would prune")
	return cmd
}
