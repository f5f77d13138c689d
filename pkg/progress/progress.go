// Package progress tells the user what a long-running command is doing, apart from debug logs.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Action is what happened to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
	Deleted    Action = "deleted"
	Kept       Action = "kept"
	Failed     Action = "failed"
)

// Reporter receives progress; implementations must be safe for concurrent use.
type Reporter interface {
	// Object reports what was done to one object, with an optional detail.
	Object(id string, action Action, detail string)
	// Step announces a phase of the run ("applying level 2/5: 12 objects").
	Step(format string, args ...any)
	// Waiting reports readiness: done of total, and the objects still pending.
	Waiting(what string, done, total int, pending []string)
}

// Lines writes one line per event: the format for logs and CI. Waiting prints only when the
// count changes, so a long wait does not flood the log.
type Lines struct {
	mu       sync.Mutex
	out      io.Writer
	quiet    bool // objects left unchanged are not listed
	lastWait string
}

// NewLines writes to out; with quiet, unchanged objects are counted but not listed.
func NewLines(out io.Writer, quiet bool) *Lines { return &Lines{out: out, quiet: quiet} }

func (l *Lines) Object(id string, action Action, detail string) {
	if l.quiet && action == Unchanged {
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
