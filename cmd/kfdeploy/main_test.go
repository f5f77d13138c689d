package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// kfdeploy runs a command line as main does and returns its exit status and stderr.
func kfdeploy(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func TestExitStatus(t *testing.T) {
	app := filepath.Join(t.TempDir(), "lab")
	if code, _, stderr := kfdeploy(t, context.Background(), "init", app, "--platform", "none"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	// A kubeconfig whose server nobody serves: commands that got as far as connecting fail.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: me, user: {token: t}}]
contexts: [{name: gone, context: {cluster: gone, user: me}}]
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"version", []string{"version"}, 0},
		{"unknown flag", []string{"version", "--bogus"}, 1},
		{"diff of the platform with platform none: nothing to diff", []string{"diff", "platform", "--app-dir", app}, 0},
		{"diff with an unknown flag is diff's error", []string{"diff", "--bogus"}, 2},
		{"diff with too many arguments", []string{"diff", "k8s", "all"}, 2},
		{"diff without manifests", []string{"diff", "--app-dir", app, "--kubeconfig", kubeconfig}, 2},
		{"apply without manifests", []string{"apply", "--app-dir", app, "--kubeconfig", kubeconfig}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := kfdeploy(t, context.Background(), tc.args...)
			if code != tc.want {
				t.Errorf("kfdeploy %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), code, tc.want, stderr)
			}
			if code != 0 && !strings.HasPrefix(stderr, "error: ") {
				t.Errorf("kfdeploy %s: stderr %q, want one error line", strings.Join(tc.args, " "), stderr)
			}
		})
	}
	t.Run("interrupted generate", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code, _, stderr := kfdeploy(t, ctx, "generate", "--app-dir", app)
		if code != 130 || !strings.Contains(stderr, "interrupted") {
			t.Errorf("generate after Ctrl-C: exit %d, stderr %q; want 130 and the word interrupted", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(app, "manifests")); err == nil {
			t.Error("an interrupted generate wrote manifests/")
		}
	})
}
