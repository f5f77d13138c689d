//go:build tools

// Package tools pins Traefik, the gateway (Gateway API and ForwardAuth) in front of the
// platform's UIs, which the conformance harness runs as a local process. It is never compiled
// into the product.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
