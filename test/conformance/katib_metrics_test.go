//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

var trialsGVR = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1beta1", Resource: "trials"}

// trialReporter stands in for Katib's metrics collector. On the local cluster trial containers
// never run, so the collector sidecar that Katib's webhook injects never reports; instead, as
// soon as a Trial appears, this reports its objective metric to the real db-manager through its
// gRPC API (ReportObservationLog), as the collector would, with the katib-report-metrics tool.
// It must report before the trial's Job completes: Katib marks a completed trial without
// observations MetricsUnavailable.
type trialReporter struct {
	mu       sync.Mutex
	reported map[string]string // trial → metric value
	errs     []error
}

// metricFor makes the objective depend on the trial's assignments, so that Katib's choice of the
// best trial is a real comparison: accuracy = 0.5 + lr.
func metricFor(trial *unstructured.Unstructured) (string, error) {
	assignments, _, _ := unstructured.NestedSlice(trial.Object, "spec", "parameterAssignments")
	for _, a := range assignments {
		m, _ := a.(map[string]any)
		if m["name"] == "lr" {
			lr, err := strconv.ParseFloat(fmt.Sprint(m["value"]), 64)
			if err != nil {
				return "", fmt.Errorf("trial %s: lr %v: %w", trial.GetName(), m["value"], err)
			}
			return strconv.FormatFloat(0.5+lr, 'f', 6, 64), nil
		}
	}
	return "", fmt.Errorf("trial %s has no lr assignment: %v", trial.GetName(), assignments)
}

// startTrialReporter watches the namespace's Trials until ctx ends. reporter is the
// katib-report-metrics binary, db the db-manager's address (its Service, which the harness
// forwards to the db-manager process).
func startTrialReporter(ctx context.Context, t *testing.T, dyn dynamic.Interface, ns, reporter, db, metricName string) *trialReporter {
	t.Helper()
	r := &trialReporter{reported: map[string]string{}}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	informer := factory.ForResource(trialsGVR).Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			trial, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			go r.report(ctx, t, trial, reporter, db, metricName)
		},
	}); err != nil {
		t.Fatalf("watch trials: %v", err)
	}
	factory.Start(ctx.Done())
	return r
}

func (r *trialReporter) report(ctx context.Context, t *testing.T, trial *unstructured.Unstructured, reporter, db, metricName string) {
	value, err := metricFor(trial)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, cerr := exec.CommandContext(rctx, reporter, "-db", db, "-trial", trial.GetName(), "-metric", metricName+"="+value).CombinedOutput()
		if cerr != nil {
			err = fmt.Errorf("report metrics of trial %s: %w: %s", trial.GetName(), cerr, strings.TrimSpace(string(out)))
		} else {
			t.Logf("trial %s: %s=%s reported to db-manager (%s)", trial.GetName(), metricName, value, strings.TrimSpace(string(out)))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	r.reported[trial.GetName()] = value
}

// results returns what was reported and every failure to report.
func (r *trialReporter) results() (map[string]string, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.reported))
	for k, v := range r.reported {
		out[k] = v
	}
	return out, append([]error(nil), r.errs...)
}
