//go:build tools

// Package tools pins the etcd server binary used by scripts/testcluster.sh.
// It is never compiled into the product.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
