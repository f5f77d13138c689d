package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// retryBackoff paces the attempts of one request: about a minute in all, long enough for an API
// server to restart. Steps caps the attempts.
var retryBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 10, Cap: 10 * time.Second}

// retryBudget is the most one request may spend between its first attempt and its last, waits
// asked for with Retry-After included.
const retryBudget = time.Minute

// retryTransport is the one layer that retries kfdeploy's requests, with one budget per request
// (retryBackoff.Steps attempts within retryBudget). It retries a request that never reached the
// API server (connection refused or reset, EOF before a response), a 503, and any 429 or 5xx
// that carries Retry-After, waiting at least as long as the server asked.
//
// client-go's rest client retries by itself above any transport: responses with Retry-After
// (429 and 5xx) and, for GET, connection resets, up to 10 times each (rest.Request.maxRetries,
// settable per request only). Stacked on this transport that multiplies the budget by ten, so
// what this transport gives back once its budget is spent is made final for client-go: the
// response without its Retry-After header, the error as *UnavailableError, which client-go does
// not count as retryable.
//
// Every request kfdeploy makes is idempotent — server-side apply, get, list, delete with a UID
// precondition, Lease writes checked by holder — so sending one again is safe.
type retryTransport struct {
	next    http.RoundTripper
	backoff wait.Backoff
	budget  time.Duration
	clock   retryClock
}

// retryClock is the time source of the retries; tests replace it with virtual time.
type retryClock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// withRetry wraps a transport; it is installed with rest.Config.Wrap.
func withRetry(rt http.RoundTripper) http.RoundTripper {
	return &retryTransport{next: rt, backoff: retryBackoff, budget: retryBudget, clock: realClock{}}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A run that lost its lock sends nothing more, checked before every attempt (see MaySend).
	if err := MaySend(req.Context()); err != nil {
		return nil, err
	}
	if isWatch(req) {
		return t.next.RoundTrip(req)
	}
	body, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	backoff := t.backoff
	start := t.clock.Now()
	for attempt := 1; ; attempt++ {
		sent := req
		if body != nil {
			sent = req.Clone(req.Context())
			sent.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := t.next.RoundTrip(sent)
		asked, retry := transient(resp, err)
		if !retry {
			return resp, err
		}
		delay := backoff.Step()
		if asked > delay {
			delay = asked
		}
		elapsed := t.clock.Now().Sub(start)
		if attempt >= t.backoff.Steps || elapsed+delay > t.budget {
			return final(resp, err, attempt, elapsed)
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err := t.clock.Sleep(req.Context(), delay); err != nil {
			return nil, err
		}
		if err := MaySend(req.Context()); err != nil {
			return nil, err
		}
	}
}

// final makes the last answer one that client-go does not retry again.
func final(resp *http.Response, err error, attempts int, elapsed time.Duration) (*http.Response, error) {
	if err != nil {
		return nil, &UnavailableError{Attempts: attempts, Elapsed: elapsed, refused: errors.Is(err, syscall.ECONNREFUSED), last: err}
	}
	resp.Header.Del("Retry-After")
	return resp, nil
}

// UnavailableError is returned when the API server could not be reached within the retry budget.
type UnavailableError struct {
	Attempts int
	Elapsed  time.Duration
	refused  bool
	last     error
}

// Error words the cause without the phrases ("connection reset by peer", "EOF") by which
// client-go would start retrying the request again.
func (e *UnavailableError) Error() string {
	why := "the connection closed before a response"
	if e.refused {
		why = e.last.Error()
	}
	return fmt.Sprintf("API server unavailable after %d attempts over %s: %s", e.Attempts, e.Elapsed.Round(time.Millisecond), why)
}

// Unwrap exposes a refused connection (client-go does not retry those); a lost connection stays
// hidden, see Error.
func (e *UnavailableError) Unwrap() error {
	if e.refused {
		return e.last
	}
	return nil
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

// transient says whether an attempt is worth repeating and how long the server asked to wait.
func transient(resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		return 0, utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
			errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "http2: client connection lost")
	}
	asked, hasRetryAfter := retryAfter(resp)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return asked, true
	case hasRetryAfter && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500):
		return asked, true
	}
	return 0, false
}

// retryAfter reads a Retry-After header in seconds, as the API server sends it.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	h := resp.Header.Get("Retry-After")
	if h == "" {
		return 0, false
	}
	s, err := strconv.Atoi(h)
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

func isWatch(req *http.Request) bool { return req.URL.Query().Get("watch") == "true" }
