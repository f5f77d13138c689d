// Command kfdeploy deploys a Kubeflow-style platform onto a Kubernetes cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kfdeploy/kfdeploy/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit status.
func run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	root := cli.NewRootCommand(streams)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(ctx, cmd, err, streams.ErrOut)
}

// Exit statuses that hold for every command.
const (
	exitOK          = 0
	exitFailure     = 1
	exitInterrupted = 130 // as a shell reports SIGINT
)

// exitCode is the one place that turns an error into an exit status: a failure prints one
// line; a command may declare its own status for errors (diff: 2, as kubectl diff), and diff
// reports changes with 1 and no message.
func exitCode(ctx context.Context, cmd *cobra.Command, err error, errOut io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, cli.ErrChanges) {
		return exitFailure
	}
	fmt.Fprintln(errOut, "error:", err)
	if ctx.Err() != nil {
		return exitInterrupted
	}
	if cmd != nil {
		if code, convErr := strconv.Atoi(cmd.Annotations[cli.AnnotationErrorExitCode]); convErr == nil {
			return code
		}
	}
	return exitFailure
}
