package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/topnodes"
)

// clearScreen moves the cursor home and clears the terminal, for --watch on a terminal.
const clearScreen = "\x1b[H\x1b[2J"

func newTopCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show GPU usage of the cluster",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTopNodesCommand(g))
	return cmd
}

// topNodesOptions are top nodes' raw flags and resolved options.
type topNodesOptions struct {
	resources []string
	watch     bool
	interval  time.Duration
	app       app.TopNodesOptions
}

func newTopNodesCommand(g *globalOptions) *cobra.Command {
	o := &topNodesOptions{}
	cmd := &cobra.Command{
		Use:     "nodes",
		Aliases: []string{"node"},
		Short:   "Show GPUs per node (total and allocated) and the cluster's sum",
		Long: `top nodes shows, for each node, the GPUs it advertises (allocatable) and the GPUs that its
non-terminated pods request, then the sum over the cluster, like 'arena top node'. It needs
no app directory; an app.yaml in --app-dir names the GPU resources (spec.gpu.resourceNames).`,
		Example: `  kfdeploy top nodes
  kfdeploy top nodes --gpu-resource amd.com/gpu
  kfdeploy top nodes --watch --interval 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.app = app.TopNodesOptions{AppDir: g.appDir, Cluster: g.kube, ResourceNames: o.resources}
			if o.interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %s", o.interval)
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().StringSliceVar(&o.resources, "gpu-resource", nil, "extended resource counted as GPUs, repeatable (default: spec.gpu.resourceNames of an app.yaml in --app-dir, else nvidia.com/gpu)")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "refresh every --interval until interrupted")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Second, "refresh interval with --watch")
	return cmd
}

func (o *topNodesOptions) run(ctx context.Context, streams ioStreams) error {
	top, err := app.ConnectTopNodes(ctx, o.app)
	if err != nil {
		return err
	}
	table := func() ([]byte, error) {
		snap, err := top.Collect(ctx)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := writeTopNodes(&buf, snap); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if !o.watch {
		out, err := table()
		if err != nil {
			return err
		}
		_, err = streams.Out.Write(out)
		return err
	}
	return watchTop(ctx, streams.Out, o.interval, table)
}

// writeTopNodes writes the top nodes table, as 'arena top node' prints it: one row per node
// with its GPUs (all configured resource names summed), then the cluster's sum.
func writeTopNodes(w io.Writer, snap *topnodes.Snapshot) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tIPADDRESS\tROLE\tGPU(Total)\tGPU(Allocated)")
	var total, allocated int64
	for _, n := range snap.Nodes {
		t, a := topnodes.Total(n.Allocatable), topnodes.Total(n.Allocated)
		total += t
		allocated += a
		ip := n.InternalIP
		if ip == "" {
			ip = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", n.Name, ip, n.Role, t, a)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintln(w, "-----------------------------------------------------------------------------------------")
	_, err := fmt.Fprintf(w, "Allocated/Total GPUs In Cluster: %d/%d (%s)\n", allocated, total, percent(allocated, total))
	return err
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%d%%", part*100/whole)
}

// watchTop redraws the table every interval: in place on a terminal, as a new table with a
// time stamp otherwise (logs, pipes). A failed refresh is shown and retried, not fatal.
func watchTop(ctx context.Context, w io.Writer, interval time.Duration, render func() ([]byte, error)) error {
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for first := true; ; first = false {
		out, err := render()
		if ctx.Err() != nil {
			return nil // interrupted: a normal end of --watch
		}
		var buf bytes.Buffer
		switch {
		case tty:
			buf.WriteString(clearScreen)
		case !first:
			buf.WriteString("\n")
		}
		fmt.Fprintf(&buf, "Every %s: kfdeploy top nodes    %s\n\n", interval, time.Now().Format(time.DateTime))
		if err != nil {
			fmt.Fprintf(&buf, "error: %v\n", err)
		} else {
			buf.Write(out)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
