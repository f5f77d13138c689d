package app

import (
	"context"
	"fmt"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/progress"
)

// Delete removes the app's objects as recorded in the cluster's inventory, so it needs no app
// directory. A missing inventory is not an error: there is nothing to delete.
func Delete(ctx context.Context, c *kube.Client, set kube.ApplySet, opts kube.DeleteOptions, rep progress.Reporter) (*kube.Result, error) {
	res, err := c.Delete(ctx, set, opts, rep)
	if err != nil {
		return res, fmt.Errorf("delete app %s in namespace %s: %w", set.App, set.Namespace, err)
	}
	return res, nil
}
