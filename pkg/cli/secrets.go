package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// writeSecretsReport prints what apply did with the generated secrets: the Secrets whose
// cluster values secrets.yaml took (named with their keys, never a value), those replaced on
// request, and the notices.
func writeSecretsReport(w io.Writer, r *app.SecretsReport) {
	if r == nil {
		return
	}
	for _, a := range r.Adopted {
		fmt.Fprintf(w, "kept Secret %s as the cluster holds it (%s) and took its values into %s; to replace them instead, rerun with %s\n",
			a.Secret, strings.Join(a.Keys, ", "), secrets.FileName, a.Rotate)
	}
	for _, s := range r.Rotated {
		fmt.Fprintf(w, "replacing Secret %s with the values of %s (--rotate-secret/--rotate-ca)\n", s, secrets.FileName)
	}
	writeNotices(w, r.Warnings, r.Notes)
}

// writeNotices prints warnings and notes, one a line.
func writeNotices(w io.Writer, warnings, notes []string) {
	for _, n := range warnings {
		fmt.Fprintf(w, "warning: %s\n", n)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
