package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/app"
	"github.com/kfdeploy/kfdeploy/pkg/images"
)

// imagesOptions are the images command's raw flags.
type imagesOptions struct {
	output string
	mirror string
	appDir string
}

func newImagesCommand(g *globalOptions) *cobra.Command {
	o := &imagesOptions{}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List every image the app pulls, or print the commands that copy them into a mirror",
		Long: `images renders the app in memory (from app.yaml; no generate needed, nothing is written)
and lists every image it pulls, with the component that uses it and its KIND:

  workload  an image of a pod spec the app applies
  runtime   an image a controller of the app starts or injects at run time (Argo's executor,
            Katib's metrics collectors and suggestion services, notebook images, the training
            operator's PyTorchJob init container), named in its flags or configuration
  test      an image that 'kfdeploy test' runs

Images are shown as the cluster pulls them: spec.images.registry (a mirror prefix) and
spec.images.overrides of app.yaml rewrite every one of them, pod specs and configuration alike.

With --mirror DEST, images prints a shell script of skopeo copies that puts every image into the
registry DEST, keeping each image's path below its registry (docker.io/library/mysql:8.0.40 →
DEST/library/mysql:8.0.40), for a machine that reaches both registries; then set
spec.images.registry: DEST and run generate.`,
		Example: `  kfdeploy images
  kfdeploy images -o json
  kfdeploy images --mirror registry.example.com/kubeflow | sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.appDir = g.appDir
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g.streams.Out, g.streams.ErrOut)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().StringVar(&o.mirror, "mirror", "", "print the skopeo commands that copy every image into this registry (host and optional path)")
	return cmd
}

func (o *imagesOptions) validate() error {
	switch o.output {
	case "table", "", outputText, outputJSON, "yaml":
	default:
		return fmt.Errorf("--output %q is not supported: use table, json or yaml", o.output)
	}
	if o.mirror != "" {
		if _, err := images.ParseMirror(o.mirror); err != nil {
			return fmt.Errorf("--mirror: %w", err)
		}
		if o.output != "table" && o.output != "" {
			return fmt.Errorf("--mirror prints a shell script: leave out --output")
		}
	}
	return nil
}

func (o *imagesOptions) run(ctx context.Context, out, errOut io.Writer) error {
	rep, err := app.ListImages(ctx, o.appDir)
	if err != nil {
		return err
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(errOut, "warning: "+w)
	}
	if o.mirror != "" {
		copies, err := rep.MirrorCopies(o.mirror)
		if err != nil {
			return err
		}
		login, prelude, err := rep.MirrorLogin(o.mirror)
		if err != nil {
			return err
		}
		header := []string{
			fmt.Sprintf("Copies the images of app %s into %s (kfdeploy images --mirror %s | sh).", rep.App, o.mirror, o.mirror),
			"Needs skopeo, and a login to both registries (skopeo login) where they require one.",
		}
		header = append(header, login...)
		header = append(header, fmt.Sprintf("Then set spec.images.registry: %s in app.yaml and run kfdeploy generate.", o.mirror))
		return images.WriteSkopeoScript(out, header, prelude, copies)
	}
	switch o.output {
	case outputJSON:
		return printJSON(out, rep)
	case "yaml":
		data, err := yaml.Marshal(rep)
		if err != nil {
			return fmt.Errorf("write YAML: %w", err)
		}
		_, err = out.Write(data)
		return err
	}
	w := newTable(out)
	fmt.Fprintln(w, "COMPONENT\tKIND\tIMAGE\tUSED BY")
	for _, e := range rep.Images {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Component, e.Kind, e.Image, strings.Join(e.Uses, "; "))
	}
	return w.Flush()
}
