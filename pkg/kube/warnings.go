package kube

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// warnings shows the warnings the API server sends back (deprecated API versions, unknown
// fields, ...) once each per run, naming the first object whose request drew it. The object
// and where to report come from the request's context (see WithWarningObject); requests
// without them print to stderr, as kubectl does.
type warnings struct {
	mu     sync.Mutex
	seen   map[string]bool
	stderr io.Writer
}

func newWarnings() *warnings { return &warnings{seen: map[string]bool{}, stderr: os.Stderr} }

type warningKey struct{}

// WarningReporter shows the API server's warnings as a step of the run's progress; the
// engine's Reporter is one.
type WarningReporter interface {
	Step(format string, args ...any)
}

// warningTarget is what a request's context says about its warnings.
type warningTarget struct {
	object string
	rep    WarningReporter
}

// WithWarningObject marks a request's context with the object it is about and the reporter
// that shows its warnings.
func WithWarningObject(ctx context.Context, object string, rep WarningReporter) context.Context {
	return context.WithValue(ctx, warningKey{}, warningTarget{object: object, rep: rep})
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext. Code 299 is the
// "miscellaneous persistent warning" the API server uses for all of its warnings.
func (w *warnings) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	first := !w.seen[text]
	w.seen[text] = true
	w.mu.Unlock()
	if !first {
		return
	}
	target, _ := ctx.Value(warningKey{}).(warningTarget)
	line := "warning from the API server: " + text
	if target.object != "" {
		line += " (" + target.object + ")"
	}
	if target.rep != nil {
		target.rep.Step("%s", line)
		return
	}
	fmt.Fprintln(w.stderr, line)
}
