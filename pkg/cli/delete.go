package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
)

type deleteFlags struct {
	purge     bool
	timeout   time.Duration
	appName   string
	namespace string
	yes       bool
	dryRun    bool
	output    string
	conc      int
}

func newDeleteCommand(g *globalOptions) *cobra.Command {
	f := &deleteFlags{}
	cmd := &cobra.Command{
		Use:   "delete [k8s|platform|all]",
		Short: "Delete what the app applied; PVCs, PVs and generated secrets are kept unless --purge",
		Long: `delete removes the app's objects as recorded in the cluster (the ApplySet inventory), so it
also works without the app directory: kfdeploy delete --app NAME --namespace NS.
Custom resources go first, then workloads, configuration, CRDs, and the namespace last, only
if kfdeploy created it and nothing kept is inside. PersistentVolumeClaims, PersistentVolumes
and generated secrets stay, and are listed, unless --purge is given.`,
		Example: `  kfdeploy delete
  kfdeploy delete --purge --yes
  kfdeploy delete --app myapp --namespace kubeflow`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok, err := scope(g.streams.Out, "delete", args); !ok || err != nil {
				return err
			}
			if err := validateOutput(f.output); err != nil {
				return err
			}
			if f.conc < 1 || f.conc > 256 {
				return fmt.Errorf("--concurrency %d is out of range: use 1 to 256", f.conc)
			}
			set, err := f.applySet(g.appDir)
			if err != nil {
				return err
			}
			if err := f.confirm(g, set); err != nil {
				return err
			}
			out, rep, done := reportTarget(g, f.output)
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			started := time.Now()
			res, runErr := app.Delete(cmd.Context(), c, set, kube.DeleteOptions{Purge: f.purge, Timeout: f.timeout, DryRun: f.dryRun, Concurrency: f.conc}, rep)
			done()
			if errors.Is(runErr, kube.ErrNotFoundApp) {
				runErr = nil
				if f.output != "json" {
					fmt.Fprintf(out, "app %s has nothing in namespace %s: nothing to delete\n", set.App, set.Namespace)
				}
			}
			dry := ""
			if f.dryRun {
				dry = "client"
			}
			report := newRunReport("delete", set, dry, res, started, runErr)
			if f.output == "json" {
				if err := report.writeJSON(out); err != nil {
					return err
				}
			} else if runErr == nil && len(res.Objects) > 0 {
				fmt.Fprintln(out, report.summary())
			}
			return runErr
		},
	}
	cmd.Flags().BoolVar(&f.purge, "purge", false, "also delete PersistentVolumeClaims, PersistentVolumes and generated secrets (their data is lost)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for objects to be gone (finalizers)")
	cmd.Flags().StringVar(&f.appName, "app", "", "app name, to delete without the app directory (with --namespace)")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "namespace of the app, with --app")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation on a terminal")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list what would be deleted and kept, delete nothing")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: text or json")
	cmd.Flags().IntVar(&f.conc, "concurrency", 16, "objects deleted at once within a level")
	return cmd
}

// applySet finds the app: from --app/--namespace, or from app.yaml.
func (f *deleteFlags) applySet(appDir string) (kube.ApplySet, error) {
	if f.appName != "" || f.namespace != "" {
		if f.appName == "" || f.namespace == "" {
			return kube.ApplySet{}, fmt.Errorf("--app and --namespace go together: pass both to delete without the app directory")
		}
		if !config.ValidName(f.appName) || !config.ValidName(f.namespace) {
			return kube.ApplySet{}, fmt.Errorf("--app %q and --namespace %q must be DNS labels", f.appName, f.namespace)
		}
		return kube.ApplySet{App: f.appName, Namespace: f.namespace}, nil
	}
	a, err := config.Load(appDir)
	if err != nil {
		return kube.ApplySet{}, fmt.Errorf("%w (or pass --app NAME --namespace NS)", err)
	}
	return kube.ApplySet{App: a.Metadata.Name, Namespace: a.Spec.Namespace}, nil
}

// confirm asks on a terminal; scripts (no terminal) and --yes go ahead.
func (f *deleteFlags) confirm(g *globalOptions, set kube.ApplySet) error {
	if f.yes || f.dryRun {
		return nil
	}
	in, ok := g.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil
	}
	what := "keeping PVCs, PVs and generated secrets"
	if f.purge {
		what = "INCLUDING PVCs, PVs and generated secrets (data is lost)"
	}
	fmt.Fprintf(g.streams.ErrOut, "Delete app %s in namespace %s, %s? [y/N] ", set.App, set.Namespace, what)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return fmt.Errorf("delete cancelled")
	}
	return nil
}
