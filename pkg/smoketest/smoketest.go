// Package smoketest runs small real workloads against an app's components — a TFJob that needs
// a GPU, an Argo workflow passing an output parameter, a Katib experiment of three trials — waits
// for each, explains a failure with what the cluster says (the scheduler's message, the
// controller's condition), and deletes what it created.
//
// The JSON form of a Report is the `kfdeploy test -o json` document.
package smoketest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Labels on every object a run creates (and on the pod templates inside them), so that pods are
// found without knowing each controller's own labels and a later run can remove leftovers.
const (
	LabelTest     = "kfdeploy.dev/test"          // "true"
	LabelApp      = "kfdeploy.dev/test-app"      // the app's name
	LabelRun      = "kfdeploy.dev/test-run"      // the run's ID
	LabelWorkload = "kfdeploy.dev/test-workload" // the workload's name (tfjob, workflow, experiment)
)

// DefaultImage is the image of every workload unless overridden: small, with a shell.
const DefaultImage = "docker.io/library/busybox:1.37.0"

// Status is the outcome of one workload.
type Status string

// The outcomes.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Clients are the API clients a run uses: dynamic for the custom resources, typed for pods and
// namespaces.
type Clients struct {
	Dynamic dynamic.Interface
	Typed   kubernetes.Interface
}

// Options describe a run. Components are the app's; a workload whose component is missing is
// skipped.
type Options struct {
	App        string
	Namespace  string
	Components []string
	// Params are the app's parameters per component (app.yaml), for the few that shape a
	// workload (Katib's suggestion algorithms, Argo's workflow service account).
	Params map[string]map[string]any

	GPUResource string // extended resource the TFJob's worker requests
	GPUs        int64  // how many

	// Images per workload name (tfjob, workflow, experiment); a missing entry is DefaultImage.
	Images map[string]string
	// PullSecrets name the docker-registry Secrets of the namespace that every workload's pods
	// pull their image with (spec.images.pullSecrets of app.yaml).
	PullSecrets []string

	// Timeout bounds the whole run; PendingTimeout is how long a pod may stay unschedulable or
	// unable to start its container before its workload fails with that reason.
	Timeout        time.Duration
	PendingTimeout time.Duration
	// PollInterval is how often the workloads are looked at (default 1s).
	PollInterval time.Duration
	// Keep leaves the workloads in the cluster for debugging; the next run removes them.
	Keep bool
	// RunID names the run (default: random); names and labels derive from it.
	RunID string
	// AllowNothing lets a run pass in which every workload was skipped (the app has none of
	// the components that have one): by default such a run fails, since it showed nothing.
	AllowNothing bool
}

// Validate checks the options that do not depend on the cluster.
func (o *Options) Validate() error {
	var errs []error
	if o.App == "" || o.Namespace == "" {
		errs = append(errs, errors.New("an app name and a namespace are required"))
	}
	if o.GPUs < 1 {
		errs = append(errs, fmt.Errorf("the TFJob's GPU request must be at least 1, got %d", o.GPUs))
	}
	if o.GPUResource == "" {
		errs = append(errs, errors.New("a GPU resource name is required (e.g. nvidia.com/gpu)"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("the timeout must be positive, got %s", o.Timeout))
	}
	if o.PendingTimeout < 0 {
		errs = append(errs, fmt.Errorf("the pending timeout must not be negative, got %s", o.PendingTimeout))
	}
	for name := range o.Images {
		if _, ok := workloadComponents[name]; !ok {
			errs = append(errs, fmt.Errorf("unknown workload %q for an image: expected tfjob, workflow or experiment", name))
		}
	}
	return errors.Join(errs...)
}

// Result is the outcome of one workload.
type Result struct {
	Workload  string `json:"workload"`
	Component string `json:"component"`
	Kind      string `json:"kind"`
	// Object is namespace/name of what was created; empty when skipped.
	Object string `json:"object,omitempty"`
	Status Status `json:"status"`
	// Reason says why it failed or was skipped, or what passing showed.
	Reason          string  `json:"reason"`
	DurationSeconds float64 `json:"durationSeconds"`
	// Cleanup is "deleted", "kept", "" (nothing was created) or why deleting failed.
	Cleanup string `json:"cleanup,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	App       string `json:"app"`
	Namespace string `json:"namespace"`
	Run       string `json:"run"`
	Passed    bool   `json:"passed"`
	// NothingToTest is true when every workload was skipped: the app has none of their
	// components. Such a run passes only with Options.AllowNothing.
	NothingToTest bool     `json:"nothingToTest,omitempty"`
	Results       []Result `json:"results"`
	Summary       Summary  `json:"summary"`
	// Leftovers are workloads of earlier runs (kept, or interrupted before cleanup) that this run
	// removed.
	Leftovers []string `json:"leftovers"`
	// LeftoverError says why some leftovers could not be listed or removed; the run went on.
	LeftoverError   string  `json:"leftoverError,omitempty"`
	DurationSeconds float64 `json:"durationSeconds"`
}

// Summary counts the results.
type Summary struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Run removes leftovers of earlier runs, then runs the workloads of the app's components
// concurrently, each until it passes, fails or the timeout passes, and deletes them (unless
// Keep) even when ctx is cancelled. The error is non-nil only when ctx was cancelled; failed
// workloads are in the report.
func Run(ctx context.Context, c Clients, opts Options) (*Report, error) {
	started := time.Now()
	if opts.RunID == "" {
		opts.RunID = newRunID()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	rep := &Report{App: opts.App, Namespace: opts.Namespace, Run: opts.RunID, Leftovers: []string{}}
	workloads := Workloads(opts)

	// Leftovers go first, so that a kept TFJob of the last run does not hold the GPU this run's
	// needs.
	left, err := removeLeftovers(ctx, c, opts, workloads)
	rep.Leftovers = append(rep.Leftovers, left...)
	if err != nil && ctx.Err() == nil {
		// Not fatal: the run itself does not depend on it.
		rep.LeftoverError = err.Error()
	}

	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rep.Results = make([]Result, len(workloads))
	var wg sync.WaitGroup
	for i, w := range workloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Results[i] = runWorkload(runCtx, ctx, c, opts, w)
		}()
	}
	wg.Wait()

	rep.Passed = true
	for _, r := range rep.Results {
		switch r.Status {
		case Passed:
			rep.Summary.Passed++
		case Failed:
			rep.Summary.Failed++
			rep.Passed = false
		case Skipped:
			rep.Summary.Skipped++
		}
	}
	if rep.Summary.Passed+rep.Summary.Failed == 0 {
		rep.NothingToTest = true
		rep.Passed = rep.Passed && opts.AllowNothing
	}
	rep.DurationSeconds = time.Since(started).Round(time.Millisecond).Seconds()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("test of app %s interrupted: %w", opts.App, err)
	}
	return rep, nil
}

// runWorkload creates one workload, waits for it and cleans up. runCtx carries the run's
// timeout; parent tells an interruption from a timeout.
func runWorkload(runCtx, parent context.Context, c Clients, opts Options, w Workload) (res Result) {
	started := time.Now()
	res = Result{Workload: w.Name, Component: w.Component, Kind: w.Kind}
	if w.SkipReason != "" {
		res.Status, res.Reason = Skipped, w.SkipReason
		return res
	}
	res.Object = opts.Namespace + "/" + w.Object.GetName()
	defer func() { res.DurationSeconds = time.Since(started).Round(time.Millisecond).Seconds() }()

	if w.Precheck != nil {
		if err := w.Precheck(runCtx, c, opts); err != nil {
			res.Status, res.Reason = Failed, err.Error()
			return res
		}
	}
	created, err := create(runCtx, c, opts.Namespace, w)
	if created {
		defer func() { res.Cleanup = cleanup(parent, c, opts, w) }()
	}
	if err != nil {
		res.Status, res.Reason = Failed, interrupted(parent, err).Error()
		return res
	}
	ok, reason := waitFor(runCtx, parent, c, opts, w)
	res.Reason = reason
	res.Status = Failed
	if ok {
		res.Status = Passed
	}
	return res
}

// interrupted replaces an error caused by Ctrl-C with one that says so.
func interrupted(parent context.Context, err error) error {
	if parent.Err() != nil {
		return errors.New("interrupted before it finished")
	}
	return err
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:5]
}
