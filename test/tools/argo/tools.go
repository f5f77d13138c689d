//go:build tools

// Package tools pins Argo Workflows' workflow-controller and argoexec, which the
// conformance harness runs as local processes. It is never compiled into the product.
package tools

import (
	_ "github.com/argoproj/argo-workflows/v3/cmd/argoexec"
	_ "github.com/argoproj/argo-workflows/v3/cmd/workflow-controller"
)
