// Package preflight checks, before anything is applied, that a cluster can run an app: the API
// server and its version, the API versions the manifests use, the permissions apply and delete
// need, GPUs, where every pod of the app would be scheduled, storage for every claim, the
// target namespace and the pull secrets of spec.images. Each check reports findings with a status, a one-line
// finding and a one-line remedy; all checks run, in a fixed order, and every finding is kept.
//
// With NFS configured (--nfs-server/--nfs-path or spec.storage.nfs), the nfs check creates one
// PersistentVolume per claim that has no other way to bind: preflight then changes the cluster.
//
// The JSON document (`kfdeploy preflight -o json`) is a stable schema for CI:
//
//	{
//	  "app": "myapp",                  // app name
//	  "namespace": "kubeflow",         // the app's namespace
//	  "passed": true,                  // false when a check failed (or warned, with --strict)
//	  "checks": [                      // one entry per finding, checks in a fixed order:
//	    {                              // cluster, apis, permissions, gpu, fit, storage, nfs, namespace, pull-secrets, upgrade
//	      "name": "storage",           // the check
//	      "status": "fail",            // ok | warn | fail
//	      "finding": "katib/katib-mysql needs 10Gi ReadWriteOnce, ...",
//	      "remedy": "create a PV ..."  // empty when there is nothing to do
//	    }
//	  ],
//	  "summary": {"ok": 5, "warn": 1, "fail": 1},   // findings per status
//	  "createdVolumes": [              // PVs the nfs check created in this run (always a list)
//	    {"name": "kfdeploy-katib-katib-mysql", "claim": "katib/katib-mysql",
//	     "server": "10.0.0.5", "path": "/nfs-data/katib-katib-mysql",
//	     "capacity": "10Gi", "accessModes": ["ReadWriteOnce"], "storageClassName": "",
//	     "dryRun": false}              // true: not created, apply --dry-run only reports it
//	  ],
//	  "phases": [{"name": "cluster", "seconds": 0.01}, ...],   // each check's duration, in order
//	  "durationSeconds": 0.42
//	}
package preflight

import (
	"context"
	"sync"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// Status is the outcome of one finding.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Finding is one line of a check's result.
type Finding struct {
	Check   string `json:"name"`
	Status  Status `json:"status"`
	Finding string `json:"finding"`
	Remedy  string `json:"remedy"`
}

// Check is one preflight check. Run returns at least one finding and never stops at the first
// problem; errors talking to the cluster are findings too.
type Check interface {
	Name() string
	Run(ctx context.Context) []Finding
}

// gate marks a check whose failure makes the later checks pointless (the cluster is not
// reachable): they are then not run.
type gate interface{ gate() }

// volumeReporter is implemented by checks that create PersistentVolumes.
type volumeReporter interface{ CreatedVolumes() []Volume }

// Volume is a PersistentVolume the nfs check created (or, in a dry run, would create).
type Volume struct {
	Name             string   `json:"name"`
	Claim            string   `json:"claim"`
	Server           string   `json:"server"`
	Path             string   `json:"path"`
	Capacity         string   `json:"capacity"`
	AccessModes      []string `json:"accessModes"`
	StorageClassName string   `json:"storageClassName"`
	DryRun           bool     `json:"dryRun"`
}

// Summary counts findings per status.
type Summary struct {
	OK   int `json:"ok"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the result of a run; see the package documentation for its JSON form.
type Report struct {
	App            string    `json:"app"`
	Namespace      string    `json:"namespace"`
	Passed         bool      `json:"passed"`
	Checks         []Finding `json:"checks"`
	Summary        Summary   `json:"summary"`
	CreatedVolumes []Volume  `json:"createdVolumes"`
	// Warnings are about the app directory (a secrets.yaml others may read), not the cluster.
	Warnings []string `json:"warnings,omitempty"`
	// Phases is each check's duration (checks run concurrently: they overlap).
	Phases          []engine.Phase `json:"phases"`
	DurationSeconds float64        `json:"durationSeconds"`
}

// Failed reports whether the run failed: a failed finding, or with strict any warning.
func (r *Report) Failed(strict bool) bool {
	return r.Summary.Fail > 0 || (strict && r.Summary.Warn > 0)
}

// Run runs the checks and collects every finding in the checks' order. A gate check runs
// alone first; the others run concurrently (they read different things), and their findings
// are put back in order.
func Run(ctx context.Context, checks []Check) Report {
	started := time.Now()
	results := make([][]Finding, len(checks))
	took := make([]engine.Phase, len(checks))
	timed := func(i int, c Check) {
		began := time.Now()
		results[i] = runOne(ctx, c)
		took[i] = engine.NewPhase(c.Name(), began)
	}
	var wg sync.WaitGroup
	stopped := false
	for i, c := range checks {
		if stopped {
			results[i] = []Finding{{Status: Fail, Finding: "not run: the cluster is not reachable", Remedy: "fix the cluster check first"}}
			took[i] = engine.Phase{Name: c.Name()}
			continue
		}
		if _, ok := c.(gate); ok {
			wg.Wait()
			timed(i, c)
			stopped = anyFailed(results[i])
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			timed(i, c)
		}()
	}
	wg.Wait()

	rep := Report{Checks: []Finding{}, CreatedVolumes: []Volume{}, Phases: took}
	for i, c := range checks {
		for _, f := range results[i] {
			f.Check = c.Name()
			rep.Checks = append(rep.Checks, f)
			switch f.Status {
			case OK:
				rep.Summary.OK++
			case Warn:
				rep.Summary.Warn++
			default:
				rep.Summary.Fail++
			}
		}
		if v, ok := c.(volumeReporter); ok {
			rep.CreatedVolumes = append(rep.CreatedVolumes, v.CreatedVolumes()...)
		}
	}
	rep.Passed = rep.Summary.Fail == 0
	rep.DurationSeconds = time.Since(started).Round(time.Millisecond).Seconds()
	return rep
}

// runOne makes sure a check says something, and that a cancelled run says so.
func runOne(ctx context.Context, c Check) []Finding {
	fs := c.Run(ctx)
	if err := ctx.Err(); err != nil {
		return append(fs, Finding{Status: Fail, Finding: "interrupted: " + err.Error(), Remedy: "run preflight again"})
	}
	if len(fs) == 0 {
		return []Finding{{Status: OK, Finding: "nothing to check"}}
	}
	return fs
}

func anyFailed(fs []Finding) bool {
	for _, f := range fs {
		if f.Status == Fail {
			return true
		}
	}
	return false
}
