package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// deleteFlags are delete's raw flag values.
type deleteFlags struct {
	purge     bool
	timeout   time.Duration
	appName   string
	namespace string
	yes       bool
	dryRun    bool
	output    string
	conc      int
	add       bool
	verbose   bool
}

// deleteOptions are delete's resolved options.
type deleteOptions struct {
	flags    deleteFlags
	platform bool
	app      app.DeleteOptions
	// terminal: stdin is a terminal, so delete can ask.
	terminal bool
}

func newDeleteCommand(g *globalOptions) *cobra.Command {
	o := &deleteOptions{}
	f := &o.flags
	cmd := &cobra.Command{
		Use:   "delete [k8s|platform|all]",
		Short: "Delete what the app applied; PVCs, PVs, generated secrets and CRDs are kept unless --purge",
		Long: `delete removes the app's objects as recorded in the cluster (the ApplySet inventory), so it
also works without the app directory: kfdeploy delete --app NAME --namespace NS.
Custom resources go first, then workloads and configuration, and the namespace last, only if
kfdeploy created it, nothing kept is inside and it holds nothing the app did not create (users'
claims, jobs, workflows). PersistentVolumeClaims, PersistentVolumes, generated secrets and
CustomResourceDefinitions (with what they hold) stay, and are listed, unless --purge is given;
--purge names the users' objects that go with them before it asks. CRDs another kfdeploy app
on the cluster also lists stay even with --purge: that app's delete removes them.`,
		Example: `  kfdeploy delete
  kfdeploy delete --purge --yes
  kfdeploy delete --app myapp --namespace kubeflow`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(g, args); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().BoolVar(&f.purge, "purge", false, "also delete PersistentVolumeClaims, PersistentVolumes, generated secrets, CRDs with every custom resource, and namespaces holding objects the app did not create (their data is lost)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "one deadline for the whole delete, waiting for objects to be gone (finalizers) included")
	cmd.Flags().StringVar(&f.appName, "app", "", "app name, to delete without the app directory (with --namespace)")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "namespace of the app, with --app")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation on a terminal")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list what would be deleted and kept, delete nothing")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: text or json")
	cmd.Flags().IntVar(&f.conc, "concurrency", 16, "objects deleted at once within a level")
	addClusterFlag(cmd, &f.add)
	addVerboseFlag(cmd, &f.verbose)
	return cmd
}

// complete resolves the flags and finds the app: from --app/--namespace, or from app.yaml.
func (o *deleteOptions) complete(g *globalOptions, args []string) error {
	f := &o.flags
	platform, err := scope(args)
	if err != nil {
		return err
	}
	o.platform = platform
	o.app = app.DeleteOptions{
		Cluster:    g.kube,
		Delete:     engine.DeleteOptions{Purge: f.purge, Timeout: f.timeout, DryRun: f.dryRun, Concurrency: f.conc},
		AddCluster: f.add,
	}
	in, ok := g.streams.In.(*os.File)
	o.terminal = ok && term.IsTerminal(int(in.Fd()))
	if platform {
		return nil
	}
	if f.appName == "" && f.namespace == "" {
		o.app.AppDir = g.appDir
	}
	o.app.Set, err = app.DeleteTarget(g.appDir, f.appName, f.namespace)
	return err
}

// validate finds every user error before the cluster is contacted.
func (o *deleteOptions) validate() error {
	if err := validateOutput(o.flags.output); err != nil {
		return err
	}
	if o.flags.conc < 1 || o.flags.conc > 256 {
		return fmt.Errorf("--concurrency %d is out of range: use 1 to 256", o.flags.conc)
	}
	if o.flags.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.flags.timeout)
	}
	if o.flags.purge && !o.flags.yes && !o.flags.dryRun && !o.terminal {
		return errors.New("delete --purge removes PersistentVolumeClaims, PersistentVolumes, generated secrets and CRDs with their custom resources (their data is lost) and there is no terminal to confirm on: pass --yes as well")
	}
	return nil
}

// run asks for confirmation on a terminal, calls the delete phase and prints its report.
func (o *deleteOptions) run(ctx context.Context, streams ioStreams) error {
	if o.platform {
		nothingForPlatform(streams.Out, "delete")
		return nil
	}
	_, rep, done := progressTarget(streams, o.flags.output)
	opts := o.app
	opts.Progress = rep
	opts.Confirm = o.confirmer(streams)
	report, runErr := app.Delete(ctx, opts)
	done()
	if report.NotDeployed && o.flags.output != outputJSON {
		fmt.Fprintf(streams.Out, "app %s has nothing in namespace %s on %s: nothing to delete\n", report.App, report.Namespace, report.Cluster)
	}
	dry := ""
	if report.DryRun {
		dry = "client"
	}
	run := newRunReport("delete", report.App, report.Namespace, dry, report.Result, report.Phases, report.Duration, runErr)
	if o.flags.output == outputJSON {
		if err := printJSON(streams.Out, run); err != nil {
			return err
		}
	} else if runErr == nil && len(run.Objects) > 0 {
		if o.flags.verbose {
			if err := writePhases(streams.Out, run.Phases, run.DurationSeconds); err != nil {
				return err
			}
		}
		fmt.Fprintln(streams.Out, run.summary())
	}
	return runErr
}

// confirmer is shown what delete is about to do, on which cluster: on a terminal it asks
// (unless --yes or --dry-run); without an app directory, or with --purge, it always says so on
// stderr (no record of the app's clusters can be checked; a purge names the users' objects
// that go). nil when there is nothing to show.
func (o *deleteOptions) confirmer(streams ioStreams) func(app.DeletePlan) error {
	f := &o.flags
	ask := o.terminal && !f.yes && !f.dryRun
	// A purge without a question still names what it deletes that the app did not create.
	if !ask && o.app.AppDir != "" && !f.purge {
		return nil
	}
	return func(p app.DeletePlan) error {
		if !ask {
			fmt.Fprintf(streams.ErrOut, "deleting %s\n", describeDelete(p))
			return nil
		}
		fmt.Fprintf(streams.ErrOut, "Delete %s? [y/N] ", describeDelete(p))
		answer, _ := bufio.NewReader(streams.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("delete cancelled: nothing was deleted")
		}
		return nil
	}
}

// describeDelete names the app, the cluster and the counts of a delete in one line.
func describeDelete(p app.DeletePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "app %s in namespace %s on %s: %d %s", p.App, p.Namespace, p.Cluster, p.Delete, plural(p.Delete, "object", "objects"))
	if p.Namespaces > 0 {
		fmt.Fprintf(&b, " and %d %s", p.Namespaces, plural(p.Namespaces, "namespace", "namespaces"))
	}
	switch {
	case p.Purge:
		b.WriteString(", INCLUDING PVCs, PVs, generated secrets and CRDs (data is lost)")
		if len(p.Goes) > 0 {
			fmt.Fprintf(&b, ", and with them what the app did not create: %s", describeGoes(p.Goes))
		}
	case p.Keep > 0:
		fmt.Fprintf(&b, ", keeping %d (PVCs, PVs, generated secrets, CRDs and shared objects)", p.Keep)
	}
	if r := p.Recorded; r.UID != "" && r.UID != p.Cluster.UID {
		fmt.Fprintf(&b, "; NOTE: its inventory was written on another cluster (server %s, kube-system UID %s), as after a restore from backup", r.Server, r.ShortUID())
	}
	return b.String()
}

// describeGoes names, per kind and namespace, what goes with the CRDs and namespaces a purge
// deletes: "3 Workflow.argoproj.io in alice (a, b, c); 1 PersistentVolumeClaim in lab (claim-bob)".
func describeGoes(goes []engine.Contents) string {
	parts := make([]string, 0, len(goes))
	for _, c := range goes {
		where := ""
		if c.Namespace != "" {
			where = " in " + c.Namespace
		}
		names := strings.Join(c.Names, ", ")
		if c.Count > len(c.Names) {
			names += ", ..."
		}
		parts = append(parts, fmt.Sprintf("%d %s%s (%s)", c.Count, c.Kind, where, names))
	}
	return strings.Join(parts, "; ")
}
