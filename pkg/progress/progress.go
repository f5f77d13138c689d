// Package progress tells the user what a long-running command is doing, apart from debug logs.
// Its writers implement engine.Reporter.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// Lines writes one line per event: the format for logs and CI. Objects left unchanged are
// counted, not listed, and Waiting prints only when the count changes, so a long run does not
// flood the log.
type Lines struct {
	mu       sync.Mutex
	out      io.Writer
	lastWait string
}

var _ engine.Reporter = (*Lines)(nil)

// NewLines writes to out.
func NewLines(out io.Writer) *Lines { return &Lines{out: out} }

func (l *Lines) Object(id string, action engine.Action, detail string) {
	if action == engine.Unchanged {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if detail != "" {
		fmt.Fprintf(l.out, "%s %s (%s)\n", id, action, detail)
		return
	}
	fmt.Fprintf(l.out, "%s %s\n", id, action)
}

func (l *Lines) Step(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, format+"\n", args...)
}

func (l *Lines) Waiting(what string, done, total int, pending []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := fmt.Sprintf("%s: %d/%d", what, done, total)
	if len(pending) > 0 {
		shown := pending
		if len(shown) > 5 {
			shown = shown[:5]
		}
		line += " (waiting for " + strings.Join(shown, ", ")
		if len(pending) > len(shown) {
			line += fmt.Sprintf(" and %d more", len(pending)-len(shown))
		}
		line += ")"
	}
	if line == l.lastWait {
		return
	}
	l.lastWait = line
	fmt.Fprintln(l.out, line)
}
