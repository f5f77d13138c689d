package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/readiness"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

// StatusOptions are the resolved choices of a status read.
type StatusOptions struct {
	AppDir  string
	Cluster Cluster
}

// StatusReport is the readiness of the app's objects and the pods of its namespace.
type StatusReport struct {
	App       string
	Namespace string
	Objects   []readiness.ObjectStatus
	Pods      []readiness.PodStatus
	URLs      *URLs // nil without a gateway
}

// Status is the status phase: read app.yaml, connect, check that the cluster is one the app
// knows (status only reads, so it takes no lock), and read every member of the app.
func Status(ctx context.Context, opts StatusOptions) (*StatusReport, error) {
	a, err := config.Load(opts.AppDir)
	if err != nil {
		return nil, err
	}
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return nil, err
	}
	set := inventory.ApplySet{App: a.Metadata.Name, Namespace: a.Spec.Namespace}
	if _, err := guardCluster(ctx, c, opts.AppDir, set, clusterid.Status, false); err != nil {
		return nil, err
	}
	objs, err := readiness.Status(ctx, c, set)
	if errors.Is(err, inventory.ErrNotFound) {
		return nil, fmt.Errorf("app %s is not deployed in namespace %s: run 'kfdeploy apply'", set.App, set.Namespace)
	}
	if err != nil {
		return nil, err
	}
	pods, err := readiness.Pods(ctx, c, set.Namespace)
	if err != nil {
		return nil, err
	}
	urls, err := appURLs(ctx, snapshot.New(c, set, snapshot.Options{}), set, false)
	if err != nil {
		return nil, err
	}
	return &StatusReport{App: set.App, Namespace: set.Namespace, Objects: objs, Pods: pods, URLs: urls}, nil
}

// TopNodesOptions are the resolved choices of top nodes.
type TopNodesOptions struct {
	AppDir        string // optional: an app.yaml there names the GPU resources
	Cluster       Cluster
	ResourceNames []string // empty: the app's, else nvidia.com/gpu
}

// TopNodes reads the cluster's GPUs per node, repeatedly for --watch over one connection.
type TopNodes struct {
	client *kube.Client
	names  []string
}

// ConnectTopNodes is the top nodes phase: connect once; Collect then reads a snapshot.
func ConnectTopNodes(ctx context.Context, opts TopNodesOptions) (*TopNodes, error) {
	names := opts.ResourceNames
	if len(names) == 0 {
		names = []string{topnodes.DefaultResourceName}
		// top works anywhere: an app.yaml is used only when there is a valid one.
		if a, err := config.Load(opts.AppDir); err == nil {
			names = a.GPUResourceNames()
		}
	}
	c, err := kube.Connect(ctx, opts.Cluster)
	if err != nil {
		return nil, err
	}
	return &TopNodes{client: c, names: names}, nil
}

// Collect reads the GPUs per node now.
func (t *TopNodes) Collect(ctx context.Context) (*topnodes.Snapshot, error) {
	snap, err := topnodes.Collect(ctx, t.client.Fast, topnodes.Options{ResourceNames: t.names})
	if err != nil {
		return nil, fmt.Errorf("top nodes: %w", err)
	}
	return snap, nil
}
