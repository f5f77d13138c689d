package harness

import (
	"context"
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

// ArgoPods stands in for the kubelet on Argo workflow pods: kwok runs no container, so for each
// pod the workflow controller creates in a namespace, ArgoPods runs the pod's containers as
// harness processes, the way a node would: the init container (argoexec init) first, then the
// others together — the main container's `/var/run/argo/argoexec emissary -- CMD ARGS`, which
// runs CMD on this host, and argoexec wait, which reports the outputs to the node's
// WorkflowTaskResult. See README.md, "Argo workflow pods".
type ArgoPods struct {
	h         *Harness
	namespace string
	argoexec  string

	mu    sync.Mutex
	seen  map[types.UID]bool
	errs  []error
	early []string // pods that kwok completed before their exit code was known

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// argoWorkflowLabel marks the pods the workflow controller creates.
const argoWorkflowLabel = "workflows.argoproj.io/workflow"

// ExitCodeAnnotation is read by the kwok stages (scripts/lib/stages.yaml): a pod annotated with
// a non-zero code fails with it.
const ExitCodeAnnotation = "harness.kfdeploy.dev/exit-code"

// RunArgoPods watches namespace and runs every workflow pod that appears there until Stop or
// Close. argoexec is the binary that containers whose command is "argoexec" run.
func (h *Harness) RunArgoPods(ctx context.Context, namespace, argoexec string) (*ArgoPods, error) {
	argoexec, err := filepath.Abs(argoexec)
	if err != nil {
		return nil, fmt.Errorf("harness: argo pods: argoexec: %w", err)
	}
	if _, err := os.Stat(argoexec); err != nil {
		return nil, fmt.Errorf("harness: argo pods: argoexec: %w (build it with scripts/harness.sh build argoexec)", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, fmt.Errorf("harness: argo pods: util-linux unshare is not on PATH: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := h.kube.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("harness: argo pods: watch pods in %s: %w", namespace, err)
	}
	a := &ArgoPods{h: h, namespace: namespace, argoexec: argoexec, seen: map[types.UID]bool{}, cancel: cancel}
	a.wg.Add(1)
	go a.watch(ctx, w)
	return a, nil
}

// Stop ends the watch and waits for the pods being run; their processes end with the
// harness (Close) or when they exit.
func (a *ArgoPods) Stop() {
	a.cancel()
	a.wg.Wait()
}

// Errors returns what went wrong running pods (not a container's own non-zero exit).
func (a *ArgoPods) Errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

// CompletedEarly names the pods that kwok's stage completed before their main container's exit
// code was annotated: their phase says nothing about that exit code.
func (a *ArgoPods) CompletedEarly() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.early)
}

func (a *ArgoPods) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
	a.h.opts.Logf("harness: %v", err)
}

func (a *ArgoPods) watch(ctx context.Context, w watch.Interface) {
	defer a.wg.Done()
	defer func() { w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The API server ends watches now and then; pods seen are remembered.
				nw, err := a.h.kube.CoreV1().Pods(a.namespace).Watch(ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel})
				if err != nil {
					if ctx.Err() == nil {
						a.fail(fmt.Errorf("argo pods: watch pods in %s again: %w", a.namespace, err))
					}
					return
				}
				w = nw
				continue
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || (ev.Type != watch.Added && ev.Type != watch.Modified) || pod.DeletionTimestamp != nil ||
				pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				continue
			}
			a.mu.Lock()
			done := a.seen[pod.UID]
			a.seen[pod.UID] = true
			a.mu.Unlock()
			if done {
				continue
			}
			a.wg.Add(1)
			go func(pod *corev1.Pod) {
				defer a.wg.Done()
				if err := a.runPod(ctx, pod); err != nil && ctx.Err() == nil {
					a.fail(fmt.Errorf("argo pods: pod %s/%s: %w", pod.Namespace, pod.Name, err))
				}
			}(pod.DeepCopy())
		}
	}
}

// argoPod is what the containers of one pod share.
type argoPod struct {
	pod        *corev1.Pod
	dir        string
	kubeconfig string
	hosts      string
	volumes    map[string]string // emptyDir volume → its directory
	resolver   *resolver
}

// runPod runs pod's containers as a node would and annotates the pod with the main
// container's exit code.
func (a *ArgoPods) runPod(ctx context.Context, pod *corev1.Pod) error {
	dir, err := filepath.Abs(a.h.processDir(pod.Name))
	if err != nil {
		return fmt.Errorf("pod directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod directory: %w", err)
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tokens := func(ctx context.Context, audience string, seconds int64) (string, error) {
		return a.h.token(ctx, pod.Namespace, sa, audience, seconds)
	}
	token, err := tokens(ctx, "", tokenLifetime)
	if err != nil {
		return err
	}
	p := &argoPod{pod: pod, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig"), hosts: filepath.Join(dir, "hosts"), volumes: map[string]string{}}
	if err := writeKubeconfig(p.kubeconfig, a.h.server, a.h.ca, pod.Namespace, sa, token); err != nil {
		return err
	}
	if err := a.h.writeHosts(ctx, p.hosts, pod.Namespace); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(a.argoexec, filepath.Join(dir, "bin", "argoexec")); err != nil {
		return fmt.Errorf("argoexec on the containers' PATH: %w", err)
	}
	p.resolver = &resolver{kube: a.h.kube, tokens: tokens, ca: a.h.ca, pod: podInfo{
		name: pod.Name, namespace: pod.Namespace, uid: string(pod.UID), serviceAccount: sa,
		nodeName: pod.Spec.NodeName, labels: pod.Labels, annotations: pod.Annotations,
	}}
	for _, v := range pod.Spec.Volumes {
		vdir := filepath.Join(dir, "volumes", v.Name)
		p.volumes[v.Name] = vdir
		if v.EmptyDir == nil {
			// The ServiceAccount token that admission projects, ConfigMaps, Secrets: as Start
			// materialises them.
			ok, err := p.resolver.materialise(ctx, &pod.Spec.Containers[0], v, vdir)
			if err != nil {
				return err
			}
			if !ok {
				a.h.opts.Logf("harness: pod %s/%s: volume %s (%s) is an empty directory here", pod.Namespace, pod.Name, v.Name, volumeKind(v))
			}
			continue
		}
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		// Containers of a pod may run as different users; an emptyDir is writable by all.
		if err := os.Chmod(vdir, 0o777); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}

	for i := range pod.Spec.InitContainers {
		code, err := a.runContainer(ctx, p, &pod.Spec.InitContainers[i])
		if err != nil {
			return err
		}
		if code != 0 {
			// A failed init container fails the pod; main and wait never start.
			return a.annotateExitCode(ctx, pod, code)
		}
	}
	errs := make([]error, len(pod.Spec.Containers))
	var wg sync.WaitGroup
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, errs[i] = a.runContainer(ctx, p, c); errs[i] == nil && c.Name == "main" {
				errs[i] = a.reportMainExit(ctx, p)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runContainer runs c as a harness process to its end and returns its exit code; err is for
// failures to run it.
func (a *ArgoPods) runContainer(ctx context.Context, p *argoPod, c *corev1.Container) (int, error) {
	name := p.pod.Name + "." + c.Name
	dir := filepath.Join(p.dir, c.Name)
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o755); err != nil {
		return 0, err
	}
	env, err := p.resolver.env(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	envMap := map[string]string{}
	for _, kv := range env {
		envMap[kv[0]] = kv[1]
	}
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 {
		return 0, fmt.Errorf("container %s has no command (the image's entrypoint is unknown here)", c.Name)
	}
	for i := range argv {
		argv[i] = expand(argv[i], mapLookup(envMap))
	}
	if argv[0] == "argoexec" {
		argv[0] = a.argoexec
	}
	// The pod's volumes at their mount paths, shared by its containers (/var/run/argo is made
	// in a private overlay of /run); an emptyDir at /tmp is the container's private /tmp.
	box := &sandbox{work: dir, hostsFile: p.hosts, keep: []string{p.dir, filepath.Dir(a.argoexec)}}
	for _, m := range c.VolumeMounts {
		src, ok := p.volumes[m.Name]
		if !ok {
			return 0, fmt.Errorf("container %s mounts volume %s, which the pod does not define", c.Name, m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+m.SubPath))
			if err := os.MkdirAll(src, 0o777); err != nil {
				return 0, err
			}
		}
		if !box.plan(src, m.MountPath, false) && m.MountPath != "/tmp" {
			a.h.opts.Logf("harness: %s: volume %s is not mounted at %s", name, m.Name, m.MountPath)
		}
	}
	// argoexec is on the image's PATH (init copies it from there into /var/run/argo).
	procEnv := []string{"PATH=" + filepath.Join(p.dir, "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Join(dir, "home")}
	for _, kv := range env {
		if kv[0] != "KUBECONFIG" {
			procEnv = append(procEnv, kv[0]+"="+kv[1])
		}
	}
	procEnv = append(procEnv, "KUBECONFIG="+p.kubeconfig)
	// Launched by the harness (its spawner thread: the Pdeathsig of the processes holds).
	proc, err := a.h.launch(name, dir, box, argv, procEnv, dir)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	a.h.mu.Lock()
	closed := a.h.closed
	if !closed {
		a.h.procs = append(a.h.procs, proc)
	}
	a.h.mu.Unlock()
	if closed {
		proc.Stop(a.h.opts.StopGrace)
		return 0, errors.New("harness closed")
	}
	a.h.opts.Logf("harness: started %s (pid %d, service account %s/%s): %s; log %s", name, proc.Pid(), p.pod.Namespace, p.resolver.pod.serviceAccount, strings.Join(argv, " "), proc.LogPath)
	select {
	case <-proc.Exited():
	case <-ctx.Done():
		proc.Stop(a.h.opts.StopGrace)
		return 0, ctx.Err()
	}
	var exitErr *exec.ExitError
	if err := proc.Err(); errors.As(err, &exitErr) {
		a.h.opts.Logf("harness: %s exited with %d; its log ends:\n%s", name, exitErr.ExitCode(), proc.tail(20))
		return exitErr.ExitCode(), nil
	} else if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	return 0, nil
}

// reportMainExit puts the exit code that the emissary wrote for the main container
// (/var/run/argo/ctr/main/exitcode) on the pod.
func (a *ArgoPods) reportMainExit(ctx context.Context, p *argoPod) error {
	dir, ok := p.volumes["var-run-argo"]
	if !ok {
		return errors.New("the pod has no var-run-argo volume: not an emissary pod")
	}
	data, err := os.ReadFile(filepath.Join(dir, "ctr", "main", "exitcode"))
	if err != nil {
		return fmt.Errorf("main container's exit code: %w", err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("main container's exit code %q: %w", data, err)
	}
	return a.annotateExitCode(ctx, p.pod, code)
}

func (a *ArgoPods) annotateExitCode(ctx context.Context, pod *corev1.Pod, code int) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ExitCodeAnnotation, strconv.Itoa(code))
	patched, err := a.h.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil // already garbage-collected: nothing waits for it
	}
	if err != nil {
		return fmt.Errorf("annotate exit code %d: %w", code, err)
	}
	if ph := patched.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		// kwok's stage was quicker: the pod's phase does not follow this exit code.
		a.mu.Lock()
		a.early = append(a.early, pod.Name)
		a.mu.Unlock()
		a.h.opts.Logf("harness: pod %s/%s was already %s when its exit code %d was known", pod.Namespace, pod.Name, ph, code)
	}
	a.h.opts.Logf("harness: pod %s/%s: annotated %s=%d, %s after the pod was created", pod.Namespace, pod.Name, ExitCodeAnnotation, code, time.Since(pod.CreationTimestamp.Time).Round(100*time.Millisecond))
	return nil
}
