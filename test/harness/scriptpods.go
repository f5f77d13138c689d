package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Annotations the kwok stages read (scripts/lib/stages.yaml): a held pod neither completes nor
// fails until its exit code is set; the termination message becomes its containers'.
const (
	HoldAnnotation               = "harness.kfdeploy.dev/hold"
	TerminationMessageAnnotation = "harness.kfdeploy.dev/termination-message"
)

// maxTerminationMessage is what the kubelet keeps of a termination message (4096 bytes).
const maxTerminationMessage = 4096

// ScriptPods stands in for the kubelet on pods whose container runs a shell script (`sh -c
// SCRIPT`), such as the workers of `kfdeploy test`'s TFJob: for each pod that appears, it holds
// the pod (kwok would otherwise complete it), runs the script on this host with PATH holding
// only the directories the test gives (stand-ins for the image's tools, e.g. nvidia-smi) and
// the system's, and reports the exit code and the termination message, which the script writes
// to the container's terminationMessagePath (here a file of the harness in its place).
type ScriptPods struct {
	h         *Harness
	namespace string
	selector  string
	path      []string

	mu    sync.Mutex
	seen  map[types.UID]bool
	errs  []error
	early []string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// RunScriptPods watches the pods of namespace that selector selects and runs each one's first
// container as above until Stop. binDirs come first on the scripts' PATH.
func (h *Harness) RunScriptPods(ctx context.Context, namespace, selector string, binDirs ...string) (*ScriptPods, error) {
	var path []string
	for _, d := range binDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("harness: script pods: %w", err)
		}
		path = append(path, abs)
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := h.kube.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("harness: script pods: watch pods in %s: %w", namespace, err)
	}
	s := &ScriptPods{h: h, namespace: namespace, selector: selector, path: path, seen: map[types.UID]bool{}, cancel: cancel}
	s.wg.Add(1)
	go s.watch(ctx, w)
	return s, nil
}

// Stop ends the watch and waits for the scripts being run.
func (s *ScriptPods) Stop() {
	s.cancel()
	s.wg.Wait()
}

// Errors returns what went wrong running pods (not a script's own non-zero exit).
func (s *ScriptPods) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// CompletedEarly names the pods that kwok ended before they were held: their status says
// nothing about their script.
func (s *ScriptPods) CompletedEarly() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.early)
}

func (s *ScriptPods) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
	s.h.opts.Logf("harness: %v", err)
}

func (s *ScriptPods) watch(ctx context.Context, w watch.Interface) {
	defer s.wg.Done()
	defer func() { w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				nw, err := s.h.kube.CoreV1().Pods(s.namespace).Watch(ctx, metav1.ListOptions{LabelSelector: s.selector})
				if err != nil {
					if ctx.Err() == nil {
						s.fail(fmt.Errorf("script pods: watch pods in %s again: %w", s.namespace, err))
					}
					return
				}
				w = nw
				continue
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			// A kubelet runs only the pods bound to its node.
			if !isPod || (ev.Type != watch.Added && ev.Type != watch.Modified) || pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
				continue
			}
			s.mu.Lock()
			done := s.seen[pod.UID]
			s.seen[pod.UID] = true
			s.mu.Unlock()
			if done {
				continue
			}
			s.wg.Add(1)
			go func(pod *corev1.Pod) {
				defer s.wg.Done()
				if err := s.runPod(ctx, pod); err != nil && ctx.Err() == nil {
					s.fail(fmt.Errorf("script pods: pod %s/%s: %w", pod.Namespace, pod.Name, err))
				}
			}(pod.DeepCopy())
		}
	}
}

func (s *ScriptPods) annotate(ctx context.Context, pod *corev1.Pod, annotations map[string]string) (*corev1.Pod, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return nil, err
	}
	return s.h.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
}

// runPod holds pod, runs its first container's script and reports how it ended.
func (s *ScriptPods) runPod(ctx context.Context, pod *corev1.Pod) error {
	if ph := pod.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		s.mu.Lock()
		s.early = append(s.early, pod.Name)
		s.mu.Unlock()
		return nil
	}
	held, err := s.annotate(ctx, pod, map[string]string{HoldAnnotation: "true"})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	if ph := held.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		s.mu.Lock()
		s.early = append(s.early, pod.Name)
		s.mu.Unlock()
		return nil
	}
	if len(pod.Spec.Containers) == 0 {
		return errors.New("no container")
	}
	c := pod.Spec.Containers[0]
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) != 3 || filepath.Base(argv[0]) != "sh" || argv[1] != "-c" {
		return fmt.Errorf("container %s runs %q, not sh -c SCRIPT", c.Name, argv)
	}
	dir, err := filepath.Abs(s.h.processDir(pod.Name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The kubelet mounts a file of the pod at terminationMessagePath; the script writes there.
	logPath := c.TerminationMessagePath
	if logPath == "" {
		logPath = corev1.TerminationMessagePathDefault
	}
	messageFile := filepath.Join(dir, "termination-log")
	script := strings.ReplaceAll(argv[2], logPath, messageFile)
	env := []string{"PATH=" + strings.Join(append(slices.Clone(s.path), "/usr/local/bin", "/usr/bin", "/bin"), ":"), "HOME=" + dir}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "sh", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	out, runErr := cmd.CombinedOutput()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitCode()
	case runErr != nil:
		return fmt.Errorf("run container %s's script: %w", c.Name, runErr)
	}
	message, err := os.ReadFile(messageFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(message) > maxTerminationMessage {
		message = message[:maxTerminationMessage]
	}
	s.h.opts.Logf("harness: pod %s/%s: container %s's script exited %d: %s", pod.Namespace, pod.Name, c.Name, code, strings.TrimSpace(string(out)))
	_, err = s.annotate(ctx, pod, map[string]string{ExitCodeAnnotation: strconv.Itoa(code), TerminationMessageAnnotation: string(message)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
