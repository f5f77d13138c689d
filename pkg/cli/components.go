package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/render"
)

func newComponentsCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "components",
		Short: "List the built-in components (and the app's own) with the images they deploy",
		Long: `components lists the component library built into kfdeploy and, when run in an app
directory, the app's own components from components/ (SOURCE shows their path). IMAGES are the
container images each component deploys with its default parameters.`,
		Example: `  kfdeploy components
  kfdeploy components -o json
  kfdeploy components show jupyter`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			list, err := app.Components(g.appDir)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(g.streams.Out, list)
			}
			return writeComponents(g.streams.Out, list)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	cmd.AddCommand(newComponentsShowCommand(g))
	return cmd
}

func newComponentsShowCommand(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show COMPONENT",
		Short: "Describe a component: its parameters with defaults, generated secrets and images",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			d, err := app.ShowComponent(g.appDir, args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(g.streams.Out, d)
			}
			return writeComponentDetail(g.streams.Out, d)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text or json")
	return cmd
}

func writeComponents(out io.Writer, list []app.ComponentSummary) error {
	w := newTable(out)
	fmt.Fprintln(w, "NAME\tSOURCE\tDESCRIPTION\tIMAGES")
	for _, c := range list {
		images := strings.Join(c.Images, ",")
		switch {
		case c.Error != "":
			images = "(not rendered at its defaults: " + c.Error + ")"
		case images == "":
			images = "-"
		}
		source := c.Source
		if c.OverridesBuiltin {
			source += " (overrides built-in)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, source, oneLine(c.Description), images)
	}
	return w.Flush()
}

func writeComponentDetail(out io.Writer, d *app.ComponentDetail) error {
	source := d.Source
	if d.OverridesBuiltin {
		source += " (the app's own, overriding the built-in component)"
	}
	fmt.Fprintf(out, "%s: %s\nsource: %s\n\n", d.Name, d.Description, source)
	w := newTable(out)
	if len(d.Params) == 0 {
		fmt.Fprintln(w, "parameters: none")
	} else {
		fmt.Fprintln(w, "PARAMETER\tDEFAULT\tDESCRIPTION")
		for _, p := range d.Params {
			fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, render.JSONText(p.Default), oneLine(p.Description))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(d.Secrets) > 0 {
		// Names only: the values live in the app's secrets.yaml and never reach output.
		fmt.Fprintln(out, "\ngenerated secrets (stored in secrets.yaml by 'kfdeploy generate'):")
		w = newTable(out)
		for _, s := range d.Secrets {
			fmt.Fprintf(w, "  %s\t%s\n", s.Name, oneLine(s.Description))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	switch {
	case d.Error != "":
		fmt.Fprintf(out, "\nimages: unknown, the component does not render at its defaults: %s\n", d.Error)
	case len(d.Images) == 0:
		fmt.Fprintln(out, "\nimages: none")
	default:
		fmt.Fprintln(out, "\nimages (at the defaults):")
		for _, img := range d.Images {
			fmt.Fprintf(out, "  %s\n", img)
		}
	}
	fmt.Fprintf(out, "\nset a parameter with: kfdeploy param set %s PARAMETER VALUE\n", d.Name)
	return nil
}

// oneLine keeps a table row on one line whatever a description holds.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
