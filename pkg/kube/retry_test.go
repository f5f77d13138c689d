package kube

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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

// TestRetryTransportAsksTheSendGuard: a request whose context carries a guard that refuses
// (a run that lost its lock) is not sent, and neither is a retry after the guard starts
// refusing while the transport waits.
func TestRetryTransportAsksTheSendGuard(t *testing.T) {
	stop := errors.New("the run lost its lock")
	refused := WithSendGuard(context.Background(), func() error { return stop })
	next := &flakyTransport{}
	req, _ := http.NewRequestWithContext(refused, http.MethodPatch, "https://api/api/v1/namespaces/ns/configmaps/x", strings.NewReader("{}"))
	if _, err := testRetry(next, fastBackoff).RoundTrip(req); !errors.Is(err, stop) || next.calls != 0 {
		t.Errorf("guarded request: error %v after %d calls, want the guard's error and no call", err, next.calls)
	}
	var calls int
	lateStop := WithSendGuard(context.Background(), func() error {
		if calls++; calls > 1 {
			return stop
		}
		return nil
	})
	next = &flakyTransport{failures: 3}
	req, _ = http.NewRequestWithContext(lateStop, http.MethodGet, "https://api/version", nil)
	if _, err := testRetry(next, fastBackoff).RoundTrip(req); !errors.Is(err, stop) || next.calls != 1 {
		t.Errorf("guard refusing after the first attempt: error %v after %d calls, want the guard's error after one call", err, next.calls)
	}
	if err := MaySend(context.Background()); err != nil {
		t.Errorf("a context without a guard: %v", err)
	}
}

func TestRetryTransportReplaysBodyAfterConnectionRefused(t *testing.T) {
	flaky := &flakyTransport{failures: 2}
	rt := testRetry(flaky, fastBackoff)
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
	rt := testRetry(flaky, fastBackoff)
	req, _ := http.NewRequest(http.MethodGet, "https://api/version", nil)
	if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 || flaky.calls != 2 {
		t.Fatalf("503: got %v %v after %d calls, want 200 after 2", resp, err, flaky.calls)
	}
	flaky = &flakyTransport{failures: 1, status: http.StatusInternalServerError}
	rt = testRetry(flaky, fastBackoff)
	if resp, _ := rt.RoundTrip(req); resp.StatusCode != 500 || flaky.calls != 1 {
		t.Fatalf("500: got %d after %d calls, want the 500 at once", resp.StatusCode, flaky.calls)
	}
}

func TestRetryTransportGivesUpAfterBackoff(t *testing.T) {
	flaky := &flakyTransport{failures: 100}
	rt := testRetry(flaky, fastBackoff)
	req, _ := http.NewRequest(http.MethodGet, "https://api/version", nil)
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want the connection error", err)
	}
	if flaky.calls != fastBackoff.Steps {
		t.Errorf("calls = %d, want %d", flaky.calls, fastBackoff.Steps)
	}
}

// virtualClock is time that passes only when the transport sleeps: no test waits for real.
type virtualClock struct {
	mu      sync.Mutex
	now     time.Time
	elapsed time.Duration
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Add(c.elapsed)
}

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.elapsed += d
	return ctx.Err()
}

func testRetry(next http.RoundTripper, b wait.Backoff) *retryTransport {
	return &retryTransport{next: next, backoff: b, budget: retryBudget, clock: &virtualClock{now: time.Unix(0, 0)}}
}

// countingServer answers every request with handle and counts the requests that reached it.
func countingServer(t *testing.T, handle func(http.ResponseWriter, *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// stackedClient is a client-go clientset over the retry transport with virtual time, as
// NewClientFromConfig builds it: client-go's own retries sit above the transport.
func stackedClient(t *testing.T, url string, backoff wait.Backoff) (kubernetes.Interface, *virtualClock) {
	t.Helper()
	clock := &virtualClock{now: time.Unix(0, 0)}
	cfg := &rest.Config{Host: url, QPS: -1}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &retryTransport{next: rt, backoff: backoff, budget: retryBudget, clock: clock}
	})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, clock
}

// TestRetriesNotStacked503RetryAfter: a 503 with Retry-After is retried by the transport alone,
// within one budget; client-go, which would retry every such answer ten times more, gets a
// final answer.
func TestRetriesNotStacked503RetryAfter(t *testing.T) {
	srv, n := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	cs, clock := stackedClient(t, srv.URL, retryBackoff)
	_, err := cs.CoreV1().ConfigMaps("ns").Get(context.Background(), "x", metav1.GetOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("got %v, want the 503", err)
	}
	if got := n.Load(); got != int64(retryBackoff.Steps) {
		t.Errorf("%d requests reached the server, want %d (one budget, not client-go's retries on top)", got, retryBackoff.Steps)
	}
	if clock.elapsed > retryBudget {
		t.Errorf("the retries waited %s, more than the budget of %s", clock.elapsed, retryBudget)
	}
}

// TestRetryAfterLongerThanBudget: the server's Retry-After is honoured, and the total wait
// stays within the budget even when each wait is long.
func TestRetryAfterLongerThanBudget(t *testing.T) {
	srv, n := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "25")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	cs, clock := stackedClient(t, srv.URL, retryBackoff)
	_, err := cs.CoreV1().ConfigMaps("ns").Get(context.Background(), "x", metav1.GetOptions{})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("got %v, want the 429", err)
	}
	// Waits of 25 s: attempts at 0, 25 and 50 s; a fourth at 75 s would exceed the minute.
	if got := n.Load(); got != 3 {
		t.Errorf("%d requests reached the server, want 3", got)
	}
	if clock.elapsed != 50*time.Second {
		t.Errorf("waited %s in all, want the 2 × 25 s the server asked for", clock.elapsed)
	}
}

// TestRetriesNotStackedLostConnection: a GET whose connection closes before any response is
// retried within the transport's budget only; client-go would otherwise retry it ten times
// more, each with a full budget.
func TestRetriesNotStackedLostConnection(t *testing.T) {
	srv, n := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	cs, _ := stackedClient(t, srv.URL, fastBackoff)
	_, err := cs.CoreV1().ConfigMaps("ns").Get(context.Background(), "x", metav1.GetOptions{})
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("got %v, want *UnavailableError", err)
	}
	if got := n.Load(); got != int64(fastBackoff.Steps) {
		t.Errorf("%d requests reached the server, want %d", got, fastBackoff.Steps)
	}
}
