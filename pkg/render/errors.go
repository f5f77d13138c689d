package render

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-jsonnet"
)

// oneLineErrors formats jsonnet errors as a single "file:line:col: message" line, the location
// being the innermost frame that has one, instead of go-jsonnet's multi-line stack trace.
type oneLineErrors struct{ stripPrefix string }

func (f oneLineErrors) Format(err error) string {
	var rt jsonnet.RuntimeError
	if errors.As(err, &rt) {
		// A syntax error in an imported file arrives as a runtime error of the import whose
		// message already starts with the file's location: that location is the one to show.
		if msg, ok := locatedMessage(rt.Msg); ok {
			return f.strip(msg)
		}
		for _, frame := range rt.StackTrace {
			// Frames in the generated entry snippet say nothing to the user; skip them.
			if frame.Loc.IsSet() && !strings.HasPrefix(frame.Loc.FileName, "<component ") {
				return f.strip(fmt.Sprintf("%s: %s", frame.Loc.String(), rt.Msg))
			}
		}
		return f.strip(rt.Msg)
	}
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	if located, ok := locatedMessage(msg); ok {
		msg = located
	}
	return f.strip(msg)
}

// locatedMessage turns "file:line:col-col message" (go-jsonnet's static error form) into
// "file:line:col-col: message".
func locatedMessage(msg string) (string, bool) {
	loc, rest, ok := strings.Cut(strings.SplitN(msg, "\n", 2)[0], " ")
	if !ok || strings.Count(loc, ":") < 2 || strings.HasPrefix(loc, "<component ") {
		return "", false
	}
	return strings.TrimSuffix(loc, ":") + ": " + rest, true
}

func (f oneLineErrors) strip(s string) string {
	if f.stripPrefix == "" {
		return s
	}
	return strings.ReplaceAll(s, f.stripPrefix, "")
}

func (oneLineErrors) SetMaxStackTraceSize(int)                 {}
func (oneLineErrors) SetColorFormatter(jsonnet.ColorFormatter) {}
