package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/lock"
	"github.com/kfdeploy/kfdeploy/pkg/smoketest"
)

// TestOptions are the resolved choices of a `kfdeploy test` run.
type TestOptions struct {
	AppDir  string
	Cluster Cluster
	// GPUResource is the extended resource the TFJob requests; "" means the app's first GPU
	// resource name (spec.gpu.resourceNames, default nvidia.com/gpu).
	GPUResource    string
	GPUs           int64
	Images         map[string]string // by workload: tfjob, workflow, experiment
	Timeout        time.Duration
	PendingTimeout time.Duration
	Keep           bool
	AllowNothing   bool // an app without any tested component passes
}

// TestRunOptions builds the run's options from the app's config and the command's options.
func TestRunOptions(a *config.App, opts TestOptions) smoketest.Options {
	resource := opts.GPUResource
	if resource == "" {
		resource = a.GPUResourceNames()[0]
	}
	params := map[string]map[string]any{}
	for _, c := range a.Spec.Components {
		params[c.Name] = c.Params
	}
	return smoketest.Options{
		App:            a.Metadata.Name,
		Namespace:      a.Spec.Namespace,
		Components:     a.ComponentNames(),
		Params:         params,
		GPUResource:    resource,
		GPUs:           opts.GPUs,
		Images:         opts.Images,
		PullSecrets:    a.Spec.Images.PullSecretNames(),
		Timeout:        opts.Timeout,
		PendingTimeout: opts.PendingTimeout,
		Keep:           opts.Keep,
		AllowNothing:   opts.AllowNothing,
	}
}

// Test is the test phase: it runs the smoke tests of the app against its cluster. It needs
// app.yaml only, not the generated manifests: it tests what is deployed. Its workloads are
// created and deleted on a cluster the app knows (the guard), under the app's lock: no apply or
// delete of the app runs meanwhile.
func Test(ctx context.Context, opts TestOptions) (*smoketest.Report, error) {
	a, err := config.Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	runOpts := TestRunOptions(a, opts)
	if err := rewriteTestImages(a, &runOpts); err != nil {
		return nil, fmt.Errorf("test app %s: %w", a.Metadata.Name, err)
	}
	if err := runOpts.Validate(); err != nil {
		return nil, fmt.Errorf("test app %s: %w", a.Metadata.Name, err)
	}
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return nil, err
	}
	set := inventory.ApplySet{App: a.Metadata.Name, Namespace: a.Spec.Namespace}
	if _, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.Test, false); err != nil {
		return nil, err
	}
	held, err := lock.Acquire(ctx, c, set)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	rep, err := smoketest.Run(held.Context(), smoketest.Clients{Dynamic: c.Dynamic, Typed: c.Typed}, runOpts)
	if err == nil {
		err = held.Err() // what failed after the lock was lost failed because the run stopped
	}
	return rep, held.Explain(err)
}
