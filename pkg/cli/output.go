package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
	"github.com/kfdeploy/kfdeploy/pkg/progress"
)

// The output helpers: every command prints JSON through printJSON and tables through newTable,
// so that all of them look alike. (cli-runtime's printers print API objects, which must carry
// apiVersion and kind; kfdeploy's documents are reports, not API objects.)

// printJSON writes v as indented JSON, the -o json form of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// newTable returns the writer for an aligned table; Flush it at the end.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
)

// validateOutput accepts the formats of the commands with text and JSON output.
func validateOutput(output string) error {
	if output != "" && output != outputJSON && output != outputText {
		return fmt.Errorf("--output %q is not supported: use text or json", output)
	}
	return nil
}

// runReport is the -o json document of apply and delete: a stable schema for CI.
type runReport struct {
	Operation string                `json:"operation"`
	App       string                `json:"app"`
	Namespace string                `json:"namespace"`
	DryRun    string                `json:"dryRun,omitempty"`
	Counts    map[engine.Action]int `json:"counts"`
	Objects   []engine.ObjectResult `json:"objects"`
	// Phases is where the time went, phase by phase in the order they ran (preflight checks
	// run concurrently, so theirs overlap); always a list.
	Phases []engine.Phase `json:"phases"`
	// Goes: delete --purge's users' objects that went with the CRDs and namespaces it deleted.
	Goes            []engine.Contents `json:"goes,omitempty"`
	DurationSeconds float64           `json:"durationSeconds"`
	Error           string            `json:"error,omitempty"`
}

func newRunReport(op, appName, namespace, dryRun string, res *engine.Result, phases []engine.Phase, took time.Duration, runErr error) runReport {
	r := runReport{Operation: op, App: appName, Namespace: namespace, DryRun: dryRun, Counts: map[engine.Action]int{},
		DurationSeconds: took.Round(time.Millisecond).Seconds(), Objects: []engine.ObjectResult{}, Phases: []engine.Phase{}}
	r.Phases = append(r.Phases, phases...)
	// Every action is a key, so that a missing key never means "unknown".
	for _, a := range engine.Actions {
		r.Counts[a] = 0
	}
	if res != nil {
		for a, n := range res.Counts() {
			r.Counts[a] = n
		}
		r.Objects = append(r.Objects, res.Objects...)
		r.Goes = res.Goes
		sort.Slice(r.Objects, func(i, j int) bool { return r.Objects[i].ID < r.Objects[j].ID })
	}
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return r
}

// summary is the closing line of a text run: "apply myapp: 3 created, 5 unchanged (2.1s)".
func (r runReport) summary() string {
	var parts []string
	for _, a := range engine.Actions {
		if n := r.Counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing to do"}
	}
	prefix := r.Operation
	if r.DryRun != "" {
		prefix += " (dry run: " + r.DryRun + ")"
	}
	return fmt.Sprintf("%s %s in namespace %s: %s (%.1fs)", prefix, r.App, r.Namespace, strings.Join(parts, ", "), r.DurationSeconds)
}

// writePhases is the table of where a run's time went (-v): one row per phase, then the total.
func writePhases(w io.Writer, phases []engine.Phase, total float64) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "PHASE\tSECONDS")
	for _, p := range phases {
		fmt.Fprintf(tw, "%s\t%.3f\n", p.Name, p.Seconds)
	}
	fmt.Fprintf(tw, "total\t%.3f\n", total)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write phases: %w", err)
	}
	return nil
}

// progressTarget returns where a run's progress goes: with -o json the document owns stdout
// and progress moves to stderr; on a terminal progress is a live line. done must be called
// before the result is printed.
func progressTarget(streams ioStreams, output string) (w io.Writer, rep engine.Reporter, done func()) {
	if output == outputJSON {
		return streams.ErrOut, progress.NewLines(streams.ErrOut), func() {}
	}
	if f, ok := streams.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		live := progress.NewLive(streams.Out)
		return streams.Out, live, live.Close
	}
	return streams.Out, progress.NewLines(streams.Out), func() {}
}
