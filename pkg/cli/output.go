package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/progress"
)

// runReport is the -o json document of apply and delete: a stable schema for CI.
type runReport struct {
	Operation       string                  `json:"operation"`
	App             string                  `json:"app"`
	Namespace       string                  `json:"namespace"`
	DryRun          string                  `json:"dryRun,omitempty"`
	Counts          map[progress.Action]int `json:"counts"`
	Objects         []kube.ObjectResult     `json:"objects"`
	DurationSeconds float64                 `json:"durationSeconds"`
	Error           string                  `json:"error,omitempty"`
}

// allActions fixes the keys of counts, so that a missing key never means "unknown".
var allActions = []progress.Action{progress.Created, progress.Configured, progress.Unchanged, progress.Pruned, progress.Deleted, progress.Kept, progress.Failed}

func newRunReport(op string, set kube.ApplySet, dryRun string, res *kube.Result, started time.Time, runErr error) runReport {
	r := runReport{Operation: op, App: set.App, Namespace: set.Namespace, DryRun: dryRun, Counts: map[progress.Action]int{},
		DurationSeconds: time.Since(started).Round(time.Millisecond).Seconds(), Objects: []kube.ObjectResult{}}
	for _, a := range allActions {
		r.Counts[a] = 0
	}
	if res != nil {
		for a, n := range res.Counts() {
			r.Counts[a] = n
		}
		r.Objects = append(r.Objects, res.Objects...)
		sort.Slice(r.Objects, func(i, j int) bool { return r.Objects[i].ID < r.Objects[j].ID })
	}
	if runErr != nil {
		r.Error = runErr.Error()
	}
	return r
}

func (r runReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// summary is the closing line of a text run: "apply myapp: 3 created, 5 unchanged (2.1s)".
func (r runReport) summary() string {
	var parts []string
	for _, a := range allActions {
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

// validateOutput accepts the formats of apply, delete and diff.
func validateOutput(output string) error {
	if output != "" && output != "json" && output != "text" {
		return fmt.Errorf("--output %q is not supported: use text or json", output)
	}
	return nil
}
