package cli

import (
	"context"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// diffExitError is diff's exit status for errors, as kubectl diff's: 0 no changes, 1 changes
// (ErrChanges), 2 error; usable as a CI gate.
const diffExitError = "2"

// diffOptions are diff's raw flags and resolved options.
type diffOptions struct {
	output   string
	prune    bool
	add      bool
	platform bool
	app      app.DiffOptions
}

func newDiffCommand(g *globalOptions) *cobra.Command {
	o := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff [k8s|all]",
		Short: "Show what apply would change: live state against a server-side dry run",
		Long: `diff shows, per object, a unified diff between the live object and what apply would make of
it (a server-side dry-run apply), objects apply would create, and members it would prune.
Secret values are redacted. Exit status: 0 nothing would change, 1 something would, 2 error.`,
		Args:        cobra.MaximumNArgs(1),
		Annotations: map[string]string{AnnotationErrorExitCode: diffExitError},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(g, args); err != nil {
				return err
			}
			if err := validateOutput(o.output); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text or json")
	cmd.Flags().BoolVar(&o.prune, "prune", true, "include the members apply would prune")
	addClusterFlag(cmd, &o.add)
	return cmd
}

func (o *diffOptions) complete(g *globalOptions, args []string) error {
	platform, err := scope(args)
	o.platform = platform
	o.app = app.DiffOptions{AppDir: g.appDir, Cluster: g.kube, Prune: o.prune, AddCluster: o.add}
	return err
}

// diffDocument is diff's -o json document.
type diffDocument struct {
	App       string                `json:"app"`
	Namespace string                `json:"namespace"`
	Changed   bool                  `json:"changed"`
	Counts    map[engine.Change]int `json:"counts"`
	Objects   []diffEntry           `json:"objects"`
}

type diffEntry struct {
	ID     string        `json:"id"`
	Change engine.Change `json:"change"`
	Note   string        `json:"note,omitempty"`
	Diff   string        `json:"diff,omitempty"` // unified diff, Secret values redacted
	// Planned and Reason are the apply plan's action for the object and why.
	Planned engine.Change `json:"planned"`
	Reason  string        `json:"reason,omitempty"`
}

func (o *diffOptions) run(ctx context.Context, streams ioStreams) error {
	if o.platform {
		nothingForPlatform(streams.Out, "diff")
		return nil
	}
	rep, err := app.Diff(ctx, o.app)
	if err != nil {
		return err
	}
	if rep.Secrets != nil {
		writeNotices(streams.ErrOut, rep.Secrets.Warnings, nil)
	}
	counts := rep.Counts()
	doc := diffDocument{App: rep.App, Namespace: rep.Namespace, Changed: rep.Changed(), Counts: counts, Objects: []diffEntry{}}
	for _, d := range rep.Objects {
		doc.Objects = append(doc.Objects, diffEntry{ID: d.ID, Change: d.Change, Note: d.Note, Diff: diffText(d), Planned: d.Planned, Reason: d.Reason})
	}
	if o.output == outputJSON {
		if err := printJSON(streams.Out, doc); err != nil {
			return err
		}
	} else {
		planned := map[engine.Change]int{}
		for _, d := range doc.Objects {
			planned[d.Planned]++
			// Objects the plan leaves alone are only counted; those it would send are listed,
			// also when the server would find nothing to change (applied by an older kfdeploy).
			if d.Change == engine.ChangeNone && d.Planned == engine.ChangeNone {
				continue
			}
			fmt.Fprintf(streams.Out, "# %s: %s", d.ID, d.Change)
			if d.Note != "" {
				fmt.Fprintf(streams.Out, " (%s)", d.Note)
			}
			if (d.Planned != "" && d.Planned != d.Change) || (d.Reason != "" && d.Reason != d.Note) {
				fmt.Fprintf(streams.Out, "; plan: %s: %s", d.Planned, d.Reason)
			}
			fmt.Fprintln(streams.Out)
			fmt.Fprint(streams.Out, d.Diff)
		}
		fmt.Fprintf(streams.Out, "plan: %d to create, %d to update, %d unchanged (not sent), %d to prune, %d kept\n",
			planned[engine.ChangeCreate], planned[engine.ChangeUpdate], planned[engine.ChangeNone], planned[engine.ChangePrune], planned[engine.ChangeKeep])
		fmt.Fprintf(streams.Out, "%d to create, %d to update, %d to prune, %d kept, %d unchanged\n",
			counts[engine.ChangeCreate], counts[engine.ChangeUpdate], counts[engine.ChangePrune], counts[engine.ChangeKeep], counts[engine.ChangeNone])
	}
	if doc.Changed {
		return ErrChanges
	}
	return nil
}

// diffText is the unified diff of one object with Secret values redacted; "" when there is
// nothing to show.
func diffText(d engine.ObjectDiff) string {
	var from, to string
	switch d.Change {
	case engine.ChangeCreate:
		to = d.ID
	case engine.ChangeUpdate:
		from, to = d.ID, d.ID
	case engine.ChangePrune:
		from = d.ID
	default:
		return ""
	}
	var before, after map[string]any
	if d.Live != nil {
		before = runtime.DeepCopyJSON(d.Live)
	}
	if d.Desired != nil {
		after = runtime.DeepCopyJSON(d.Desired)
	}
	redactSecretPair(before, after)
	return unified(from, to, before, after)
}

// redactSecretPair replaces Secret values on both sides with markers that still show whether
// a value changed, as kubectl diff does.
func redactSecretPair(before, after map[string]any) {
	isSecret := func(m map[string]any) bool { return m != nil && m["kind"] == "Secret" && m["apiVersion"] == "v1" }
	if !isSecret(before) && !isSecret(after) {
		return
	}
	for _, field := range []string{"data", "stringData"} {
		b, _, _ := unstructured.NestedMap(orEmpty(before), field)
		a, _, _ := unstructured.NestedMap(orEmpty(after), field)
		for k, bv := range b {
			av, ok := a[k]
			switch {
			case !ok:
				b[k] = "***"
			case fmt.Sprint(av) == fmt.Sprint(bv):
				b[k], a[k] = "***", "***"
			default:
				b[k], a[k] = "*** (before)", "*** (after)"
			}
		}
		for k := range a {
			if _, ok := b[k]; !ok {
				a[k] = "***"
			}
		}
		if before != nil && b != nil {
			_ = unstructured.SetNestedMap(before, b, field)
		}
		if after != nil && a != nil {
			_ = unstructured.SetNestedMap(after, a, field)
		}
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// unified renders a unified diff of two objects as YAML; "" when they are equal.
func unified(fromName, toName string, before, after map[string]any) string {
	toYAML := func(m map[string]any) []string {
		if m == nil {
			return nil
		}
		data, err := yaml.Marshal(m)
		if err != nil {
			return []string{fmt.Sprintf("<cannot encode: %v>\n", err)}
		}
		return difflib.SplitLines(string(data))
	}
	a, b := toYAML(before), toYAML(after)
	if fromName == "" {
		fromName = "/dev/null"
	} else {
		fromName = "live/" + fromName
	}
	if toName == "" {
		toName = "/dev/null"
	} else {
		toName = "kfdeploy/" + toName
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: a, B: b, FromFile: fromName, ToFile: toName, Context: 3})
	if err != nil {
		return fmt.Sprintf("<cannot diff: %v>\n", err)
	}
	return text
}
