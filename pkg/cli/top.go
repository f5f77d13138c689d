package cli

import (
	"bytes"
	"context"
	"encoding/json"
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
	output    string
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
  kfdeploy top nodes --watch --interval 5s
  kfdeploy top nodes -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.app = app.TopNodesOptions{AppDir: g.appDir, Cluster: g.kube, ResourceNames: o.resources}
			if o.interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %s", o.interval)
			}
			if err := validateOutput(o.output); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams)
		},
	}
	cmd.Flags().StringSliceVar(&o.resources, "gpu-resource", nil, "extended resource counted as GPUs, repeatable (default: spec.gpu.resourceNames of an app.yaml in --app-dir, else nvidia.com/gpu)")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "refresh every --interval until interrupted")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Second, "refresh interval with --watch")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output format: text or json (with --watch, one document per line and refresh)")
	return cmd
}

// topNodesDocument is the -o json document of top nodes.
type topNodesDocument struct {
	// Time is when the cluster was read (RFC 3339).
	Time          string        `json:"time"`
	ResourceNames []string      `json:"resourceNames"`
	Nodes         []topNodeJSON `json:"nodes"`
	// GPUTotal and GPUAllocated sum every node's, over every resource name; GPUUnscheduled is
	// what pods without a node request.
	GPUTotal       int64 `json:"gpuTotal"`
	GPUAllocated   int64 `json:"gpuAllocated"`
	GPUUnscheduled int64 `json:"gpuUnscheduled"`
	Pods           int   `json:"pods"`
}

// topNodeJSON is one node of topNodesDocument; allocatable and allocated are per resource name.
type topNodeJSON struct {
	Name          string           `json:"name"`
	InternalIP    string           `json:"internalIP"`
	Role          string           `json:"role"`
	Ready         bool             `json:"ready"`
	Unschedulable bool             `json:"unschedulable"`
	GPUTotal      int64            `json:"gpuTotal"`
	GPUAllocated  int64            `json:"gpuAllocated"`
	Allocatable   map[string]int64 `json:"allocatable"`
	Allocated     map[string]int64 `json:"allocated"`
}

func topNodesDoc(snap *topnodes.Snapshot, at time.Time) topNodesDocument {
	doc := topNodesDocument{Time: at.UTC().Format(time.RFC3339), ResourceNames: snap.ResourceNames, Nodes: []topNodeJSON{},
		GPUUnscheduled: topnodes.Total(snap.Unscheduled), Pods: snap.Pods}
	for _, n := range snap.Nodes {
		t, a := topnodes.Total(n.Allocatable), topnodes.Total(n.Allocated)
		doc.GPUTotal += t
		doc.GPUAllocated += a
		doc.Nodes = append(doc.Nodes, topNodeJSON{Name: n.Name, InternalIP: n.InternalIP, Role: n.Role, Ready: n.Ready,
			Unschedulable: n.Unschedulable, GPUTotal: t, GPUAllocated: a, Allocatable: orZero(n.Allocatable), Allocated: orZero(n.Allocated)})
	}
	return doc
}

func orZero(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
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
		if o.output == outputJSON {
			err = printJSON(&buf, topNodesDoc(snap, time.Now()))
		} else {
			err = writeTopNodes(&buf, snap)
		}
		if err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if o.watch && o.output == outputJSON {
		return watchJSON(ctx, streams.Out, o.interval, table)
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

// watchJSON prints a document every interval, each on one line (JSON lines), so that a program
// reads one refresh per line. A failed refresh ends the watch with its error.
func watchJSON(ctx context.Context, w io.Writer, interval time.Duration, render func() ([]byte, error)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		out, err := render()
		if ctx.Err() != nil {
			return nil // interrupted: a normal end of --watch
		}
		if err != nil {
			return err
		}
		var line bytes.Buffer
		if err := json.Compact(&line, out); err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		line.WriteByte('\n')
		if _, err := w.Write(line.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
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
