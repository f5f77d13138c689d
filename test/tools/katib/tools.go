//go:build tools

// Package tools pins Katib's Go programs (controller, db-manager, UI backend, the goptuna
// suggestion service and the file metrics collector) that the conformance harness runs as
// local processes. It is never compiled into the product.
package tools

import (
	_ "github.com/kubeflow/katib/cmd/db-manager/v1beta1"
	_ "github.com/kubeflow/katib/cmd/katib-controller/v1beta1"
	_ "github.com/kubeflow/katib/cmd/metricscollector/v1beta1/file-metricscollector"
	_ "github.com/kubeflow/katib/cmd/suggestion/goptuna/v1beta1"
	_ "github.com/kubeflow/katib/cmd/ui/v1beta1"
)
