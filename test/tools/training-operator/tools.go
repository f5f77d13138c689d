//go:build tools

// Package tools pins the Kubeflow Training Operator (v1 line) that the conformance harness runs
// as a local process against the test cluster. It is never compiled into the product.
package tools

import (
	_ "github.com/kubeflow/training-operator/cmd/training-operator.v1"
)
