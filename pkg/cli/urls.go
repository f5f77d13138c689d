package cli

import (
	"fmt"
	"io"

	"github.com/kfdeploy/kfdeploy/pkg/app"
)

// writeURLs prints the URLs of the app's UIs, which are the last lines of apply and status.
func writeURLs(w io.Writer, u *app.URLs) error {
	if u == nil {
		return nil
	}
	if u.PortForward != "" {
		fmt.Fprintf(w, "\nThe gateway has no address outside the cluster; reach it with:\n  %s\n", u.PortForward)
	}
	if len(u.Others) > 0 {
		fmt.Fprintf(w, "\nThe gateway also answers at:")
		for _, o := range u.Others {
			fmt.Fprintf(w, " %s", o)
		}
		fmt.Fprintln(w)
	}
	if u.SignInNote != "" {
		// Before the URLs, which stay the last lines.
		fmt.Fprintf(w, "\nGateway sign-in: %s\n", u.SignInNote)
	}
	fmt.Fprintf(w, "\nUIs (gateway %s):\n", u.Base)
	t := newTable(w)
	for _, ui := range u.UIs {
		signIn := ui.SignIn
		if ui.Access == "read-only" {
			signIn += " (read-only)"
		}
		fmt.Fprintf(t, "  %s\t%s\tsign-in: %s\n", ui.UI, ui.URL, signIn)
	}
	return t.Flush()
}
