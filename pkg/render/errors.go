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
		for _, frame := range rt.StackTrace {
			if frame.Loc.IsSet() {
				return f.strip(fmt.Sprintf("%s: %s", frame.Loc.String(), rt.Msg))
			}
		}
		return f.strip(rt.Msg)
	}
	// Static (syntax) errors read "file:line:col-col message"; make the location a prefix.
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	if loc, rest, ok := strings.Cut(msg, " "); ok && strings.Count(loc, ":") >= 2 {
		msg = loc + ": " + rest
	}
	return f.strip(msg)
}

func (f oneLineErrors) strip(s string) string {
	if f.stripPrefix == "" {
		return s
	}
	return strings.ReplaceAll(s, f.stripPrefix, "")
}

func (oneLineErrors) SetMaxStackTraceSize(int)                 {}
func (oneLineErrors) SetColorFormatter(jsonnet.ColorFormatter) {}
