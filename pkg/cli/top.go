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
	"k8s.io/client-go/kubernetes"

	"github.com/kfdeploy/kfdeploy/pkg/config"
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

func newTopNodesCommand(g *globalOptions) *cobra.Command {
	var (
		resources []string
		watch     bool
		interval  time.Duration
	)
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
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %s", interval)
			}
			ctx := cmd.Context()
			c, err := g.connect(ctx)
			if err != nil {
				return err
			}
			cs, err := topnodes.ProtobufClient(c.Config)
			if err != nil {
				return err
			}
			opts := topnodes.Options{ResourceNames: gpuResourceNames(resources, g.appDir)}
			if !watch {
				out, err := renderTop(ctx, cs, opts)
				if err != nil {
					return err
				}
				_, err = g.streams.Out.Write(out)
				return err
			}
			return watchTop(ctx, g.streams.Out, interval, func() ([]byte, error) { return renderTop(ctx, cs, opts) })
		},
	}
	cmd.Flags().StringSliceVar(&resources, "gpu-resource", nil, "extended resource counted as GPUs, repeatable (default: spec.gpu.resourceNames of an app.yaml in --app-dir, else nvidia.com/gpu)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval with --watch")
	return cmd
}

// gpuResourceNames: the flag, else an app.yaml in the app directory if there is a valid one
// (top works anywhere), else the default.
func gpuResourceNames(flag []string, appDir string) []string {
	if len(flag) > 0 {
		return flag
	}
	if a, err := config.Load(appDir); err == nil {
		return a.GPUResourceNames()
	}
	return []string{topnodes.DefaultResourceName}
}

func renderTop(ctx context.Context, cs kubernetes.Interface, opts topnodes.Options) ([]byte, error) {
	snap, err := topnodes.Collect(ctx, cs, opts)
	if err != nil {
		return nil, fmt.Errorf("top nodes: %w", err)
	}
	var buf bytes.Buffer
	if err := topnodes.Render(&buf, snap); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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
