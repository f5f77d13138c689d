//go:build tools

// Package tools pins the kwok binaries (kwok, kwokctl) used by
// scripts/testcluster.sh. It is never compiled into the product.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
	_ "sigs.k8s.io/kwok/cmd/kwokctl"
)
