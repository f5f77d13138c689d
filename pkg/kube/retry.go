package kube

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// retryBackoff spans about a minute: long enough for an API server to restart.
var retryBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 10, Cap: 10 * time.Second}

// retryTransport retries a request that never reached the API server (connection refused or
// reset, EOF before a response) or that the server turned away while unavailable (503). Every
// request kfdeploy makes is idempotent — server-side apply, get, list, delete with a UID
// precondition — so sending one again is safe.
type retryTransport struct {
	next    http.RoundTripper
	backoff wait.Backoff
}

// withRetry wraps a transport; it is installed with rest.Config.Wrap.
func withRetry(rt http.RoundTripper) http.RoundTripper {
	return &retryTransport{next: rt, backoff: retryBackoff}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	backoff := t.backoff
	for {
		attempt := req
		if body != nil {
			attempt = req.Clone(req.Context())
			attempt.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := t.next.RoundTrip(attempt)
		if !transient(resp, err) || backoff.Steps <= 1 || isWatch(req) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			if err == nil {
				err = fmt.Errorf("API server unavailable (HTTP %d)", resp.StatusCode)
			}
			return nil, err
		case <-time.After(backoff.Step()):
		}
	}
}

func replayableBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return data, nil
}

func transient(resp *http.Response, err error) bool {
	if err != nil {
		return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
			errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "http2: client connection lost")
	}
	return resp.StatusCode == http.StatusServiceUnavailable
}

func isWatch(req *http.Request) bool { return req.URL.Query().Get("watch") == "true" }
