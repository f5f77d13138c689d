package app

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/progress"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// Loaded is an app read from its directory: its document and generated objects with secrets
// resolved, ready to apply.
type Loaded struct {
	Dir     string
	App     *config.App
	Objects []*unstructured.Unstructured
}

// ApplySet is the app's inventory in the cluster.
func (l *Loaded) ApplySet() kube.ApplySet {
	return kube.ApplySet{App: l.App.Metadata.Name, Namespace: l.App.Spec.Namespace}
}

// Load reads app.yaml and the generated manifests, with generated passwords filled in.
func Load(appDir string) (*Loaded, error) {
	app, err := config.Load(appDir)
	if err != nil {
		return nil, err
	}
	objs, err := LoadManifests(appDir)
	if err != nil {
		return nil, err
	}
	store, err := secrets.Load(appDir)
	if err != nil {
		return nil, err
	}
	objs, err = store.Resolve(objs)
	if err != nil {
		return nil, err
	}
	return &Loaded{Dir: appDir, App: app, Objects: objs}, nil
}

// Apply applies a loaded app through the cluster client.
func Apply(ctx context.Context, c *kube.Client, l *Loaded, opts kube.ApplyOptions, rep progress.Reporter) (*kube.Result, error) {
	res, err := c.Apply(ctx, l.ApplySet(), l.Objects, opts, rep)
	if err != nil {
		return res, fmt.Errorf("apply app %s: %w", l.App.Metadata.Name, err)
	}
	return res, nil
}

// Diff shows what applying the loaded app would change.
func Diff(ctx context.Context, c *kube.Client, l *Loaded, prune bool) ([]kube.ObjectDiff, error) {
	diffs, err := c.Diff(ctx, l.ApplySet(), l.Objects, prune, 16)
	if err != nil {
		return nil, fmt.Errorf("diff app %s: %w", l.App.Metadata.Name, err)
	}
	return diffs, nil
}
