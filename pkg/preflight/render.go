package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report for people: one row per finding (CHECK, STATUS, FINDING), the
// remedy on the line below it, then a summary line.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tFINDING")
	for _, f := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Check, statusLabel(f.Status), oneLine(f.Finding))
		if f.Remedy != "" {
			fmt.Fprintf(tw, "\t\t↳ %s\n", oneLine(f.Remedy))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write preflight table: %w", err)
	}
	if len(r.CreatedVolumes) > 0 {
		names := make([]string, len(r.CreatedVolumes))
		for i, v := range r.CreatedVolumes {
			names[i] = v.Name
		}
		verb := "created PersistentVolumes"
		if r.CreatedVolumes[0].DryRun {
			verb = "would create PersistentVolumes (dry run)"
		}
		fmt.Fprintf(w, "%s: %s\n", verb, strings.Join(names, ", "))
	}
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "preflight %s (app %s, namespace %s): %d ok, %d %s, %d failed (%.1fs)\n",
		verdict, r.App, r.Namespace, r.Summary.OK, r.Summary.Warn, plural(r.Summary.Warn, "warning", "warnings"), r.Summary.Fail, r.DurationSeconds)
	return err
}

// WriteJSON writes the report as the documented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write preflight report: %w", err)
	}
	return nil
}

// statusLabel makes problems stand out in a column of "ok".
func statusLabel(s Status) string {
	if s == OK {
		return "ok"
	}
	return strings.ToUpper(string(s))
}

// oneLine keeps a finding on its row even if an error message brought a newline.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
