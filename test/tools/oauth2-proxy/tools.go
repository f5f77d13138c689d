//go:build tools

// Package tools pins oauth2-proxy, the sign-in proxy in front of the platform's UIs, and
// mockoidc, the OIDC provider that cmd/mockoidc serves in tests. The conformance harness runs
// both as local processes. It is never compiled into the product.
package tools

import (
	_ "github.com/oauth2-proxy/oauth2-proxy/v7"
)
