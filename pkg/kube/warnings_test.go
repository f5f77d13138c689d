package kube

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// stepRecorder keeps the Step lines of a run.
type stepRecorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *stepRecorder) Step(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, fmt.Sprintf(format, args...))
}

// The server's warnings reach the reporter once each, with the object of the first request
// that drew them; a request without an object goes to stderr.
func TestWarningsShownOnceWithTheObject(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget"`)
		if strings.HasSuffix(r.URL.Path, "/b") {
			w.Header().Add("Warning", `299 - "unknown field \"spec.foo\""`)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	handler := newWarnings()
	var stderr strings.Builder
	handler.stderr = &stderr
	cfg := &rest.Config{Host: srv.URL, WarningHandlerWithContext: handler}
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := &stepRecorder{}
	for _, name := range []string{"a", "b", "c"} {
		ctx := WithWarningObject(context.Background(), "kf/PodDisruptionBudget.policy/"+name, rep)
		if err := rc.Get().AbsPath("/x", name).Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Get().AbsPath("/x", "b").Do(context.Background()).Error(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"warning from the API server: policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget (kf/PodDisruptionBudget.policy/a)",
		`warning from the API server: unknown field "spec.foo" (kf/PodDisruptionBudget.policy/b)`,
	}
	if strings.Join(rep.steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(rep.steps, "\n"), strings.Join(want, "\n"))
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q: the repeated warnings should not be shown again", stderr.String())
	}
	handler.HandleWarningHeaderWithContext(context.Background(), 299, "-", "something new")
	if stderr.String() != "warning from the API server: something new\n" {
		t.Errorf("stderr %q", stderr.String())
	}
}
