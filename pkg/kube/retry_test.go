package kube

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// flakyTransport refuses the first failures requests, then answers 200, recording bodies.
type flakyTransport struct {
	failures int
	calls    int
	bodies   []string
	status   int
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.calls++
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		f.bodies = append(f.bodies, string(b))
	}
	if f.calls <= f.failures {
		if f.status != 0 {
			return &http.Response{StatusCode: f.status, Body: io.NopCloser(strings.NewReader("busy"))}, nil
		}
		return nil, &netOpError{err: syscall.ECONNREFUSED}
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok"))}, nil
}

type netOpError struct{ err error }

func (e *netOpError) Error() string { return "dial tcp 127.0.0.1:6443: " + e.err.Error() }
func (e *netOpError) Unwrap() error { return e.err }

var fastBackoff = wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}

func TestRetryTransportReplaysBodyAfterConnectionRefused(t *testing.T) {
	flaky := &flakyTransport{failures: 2}
	rt := &retryTransport{next: flaky, backoff: fastBackoff}
	req, _ := http.NewRequest(http.MethodPatch, "https://api/apis/apps/v1/deployments/x", strings.NewReader(`{"spec":{}}`))
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v, %v; want 200 after retries", resp, err)
	}
	if flaky.calls != 3 {
		t.Errorf("calls = %d, want 3", flaky.calls)
	}
	for i, b := range flaky.bodies {
		if b != `{"spec":{}}` {
			t.Errorf("attempt %d sent body %q, want the original body", i+1, b)
		}
	}
}

func TestRetryTransportRetries503ButNot500(t *testing.T) {
	flaky := &flakyTransport{failures: 1, status: http.StatusServiceUnavailable}
	rt := &retryTransport{next: flaky, backoff: fastBackoff}
	req, _ := http.NewRequest(http.MethodGet, "https://api/version", nil)
	if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 || flaky.calls != 2 {
		t.Fatalf("503: got %v %v after %d calls, want 200 after 2", resp, err, flaky.calls)
	}
	flaky = &flakyTransport{failures: 1, status: http.StatusInternalServerError}
	rt = &retryTransport{next: flaky, backoff: fastBackoff}
	if resp, _ := rt.RoundTrip(req); resp.StatusCode != 500 || flaky.calls != 1 {
		t.Fatalf("500: got %d after %d calls, want the 500 at once", resp.StatusCode, flaky.calls)
	}
}

func TestRetryTransportGivesUpAfterBackoff(t *testing.T) {
	flaky := &flakyTransport{failures: 100}
	rt := &retryTransport{next: flaky, backoff: fastBackoff}
	req, _ := http.NewRequest(http.MethodGet, "https://api/version", nil)
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want the connection error", err)
	}
	if flaky.calls != fastBackoff.Steps {
		t.Errorf("calls = %d, want %d", flaky.calls, fastBackoff.Steps)
	}
}
