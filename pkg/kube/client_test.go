package kube

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestUnreachableTellsRefusedConnectionFromRefusedCredentials(t *testing.T) {
	refused := Unreachable("https://127.0.0.1:1", fmt.Errorf("Get \"https://127.0.0.1:1/version\": %w", &netOpError{err: syscall.ECONNREFUSED}))
	if !strings.Contains(refused.Error(), "cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused") {
		t.Errorf("connection refused: got %q", refused)
	}
	creds := Unreachable("https://api:6443", apierrors.NewUnauthorized("token expired"))
	if !strings.Contains(creds.Error(), "refused the credentials") || strings.Contains(creds.Error(), "cannot reach") {
		t.Errorf("401: got %q, want a message about credentials, not reachability", creds)
	}
	if strings.Contains(creds.Error(), "\n") {
		t.Errorf("message spans lines: %q", creds)
	}
}
