package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
)

func newCACommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "Print the CA certificate (PEM) that issued the gateway's certificate, for browsers and clients to trust",
		Long: `ca prints the certificate of the app's own CA, which kfdeploy created once (made final at
the first apply) and which issues the gateway's HTTPS certificate. Its name constraints let it
vouch only for the app's names and addresses. Import it into a browser or an operating system's
trust store, or pass it to clients (curl --cacert). The CA's private key stays in secrets.yaml and
is never printed; 'kfdeploy apply --rotate-ca' replaces the CA.`,
		Example: `  kfdeploy ca > kubeflow-ca.crt
  curl --cacert kubeflow-ca.crt https://192.0.2.10/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pem, warnings, err := app.CACertificate(g.appDir)
			for _, w := range warnings {
				fmt.Fprintf(g.streams.ErrOut, "warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			_, err = io.WriteString(g.streams.Out, pem)
			return err
		},
	}
}
