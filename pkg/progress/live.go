package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// Live redraws one status line on a terminal — a bar and counts for the current step — and
// prints a permanent line only for what a user must see: steps, failures and kept objects.
type Live struct {
	mu       sync.Mutex
	out      io.Writer
	step     string
	counts   map[engine.Action]int
	wait     string
	drawn    bool
	lastDraw time.Time
}

// NewLive draws on out, which should be a terminal.
func NewLive(out io.Writer) *Live { return &Live{out: out, counts: map[engine.Action]int{}} }

func (l *Live) Object(id string, action engine.Action, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[action]++
	if action == engine.Failed || action == engine.Kept || action == engine.Pruned {
		l.clear()
		if detail != "" {
			fmt.Fprintf(l.out, "%s %s (%s)\n", id, action, detail)
		} else {
			fmt.Fprintf(l.out, "%s %s\n", id, action)
		}
	}
	l.draw(false)
}

func (l *Live) Step(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	l.step = fmt.Sprintf(format, args...)
	l.wait = ""
	fmt.Fprintln(l.out, l.step)
	l.draw(true)
}

func (l *Live) Waiting(what string, done, total int, pending []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := fmt.Sprintf("%s %s %d/%d", what, bar(done, total, 24), done, total)
	if len(pending) > 0 {
		line += "  waiting for " + pending[0]
		if len(pending) > 1 {
			line += fmt.Sprintf(" and %d more", len(pending)-1)
		}
	}
	l.wait = line
	l.draw(done == total)
	if done == total {
		l.clear()
		fmt.Fprintln(l.out, line)
		l.wait = ""
	}
}

// draw rewrites the status line, at most ten times a second unless forced.
func (l *Live) draw(force bool) {
	if !force && time.Since(l.lastDraw) < 100*time.Millisecond {
		return
	}
	l.lastDraw = time.Now()
	line := l.wait
	if line == "" {
		var parts []string
		for _, a := range sortedActions(l.counts) {
			parts = append(parts, fmt.Sprintf("%d %s", l.counts[a], a))
		}
		line = strings.Join(parts, ", ")
	}
	if line == "" {
		return
	}
	fmt.Fprintf(l.out, "\r\033[K%s", line)
	l.drawn = true
}

func (l *Live) clear() {
	if l.drawn {
		fmt.Fprint(l.out, "\r\033[K")
		l.drawn = false
	}
}

// Close ends the status line so that what follows starts on a fresh line.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
}

func bar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	filled := done * width / total
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func sortedActions(m map[engine.Action]int) []engine.Action {
	actions := make([]engine.Action, 0, len(m))
	for a := range m {
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i] < actions[j] })
	return actions
}
