package smoketest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGPUCheckScript runs the TFJob worker's script with sh: its pass path needs a GPU that
// nvidia-smi lists (a stand-in here), and each way of not seeing one fails with a message.
// The termination log, which the kubelet mounts at /dev/termination-log, is a file of the test.
func TestGPUCheckScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if m, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(m) > 0 {
		t.Skip("this machine has NVIDIA device files: the no-GPU paths cannot be run")
	}
	for _, c := range []struct {
		name     string
		smi      string // the stand-in nvidia-smi's script; "" for none on PATH
		exit     int
		terminal string // the termination message starts with it
	}{
		{"nvidia-smi lists a GPU", "echo 'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)'; echo 'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)'", 0, "GPU visible: GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)"},
		{"nvidia-smi fails", "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver'; exit 9", 1, "nvidia-smi failed: NVIDIA-SMI has failed"},
		{"no GPU", "", 1, "no GPU visible in the container: no device file /dev/nvidia[0-9]* and no nvidia-smi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.smi != "" {
				if err := os.WriteFile(filepath.Join(bin, "nvidia-smi"), []byte("#!/bin/sh\n"+c.smi+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			log := filepath.Join(dir, "termination-log")
			script := strings.ReplaceAll(gpuCheckScript("nvidia.com/gpu"), "/dev/termination-log", log)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sh, "-c", script)
			// Only the stand-in's directory and the shell's tools: no nvidia-smi of the machine.
			cmd.Env = []string{"PATH=" + bin + ":" + filepath.Dir(sh)}
			out, err := cmd.Output()
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			msg, _ := os.ReadFile(log)
			if code != c.exit || !strings.HasPrefix(string(msg), c.terminal) {
				t.Errorf("exit %d, termination message %q; want exit %d and a message starting %q (stdout %q)", code, msg, c.exit, c.terminal, out)
			}
			if strings.TrimSpace(string(out)) != strings.TrimSpace(string(msg)) {
				t.Errorf("stdout %q differs from the termination message %q", out, msg)
			}
		})
	}
}
