package topnodes

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Render writes the `top nodes` table, as `arena top node` prints it: one row per node with its
// GPUs (all configured resource names summed), then the cluster's sum.
func Render(w io.Writer, snap *Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIPADDRESS\tROLE\tGPU(Total)\tGPU(Allocated)")
	var total, allocated int64
	for _, n := range snap.Nodes {
		t, a := Total(n.Allocatable), Total(n.Allocated)
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
