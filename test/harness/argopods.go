package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ArgoPods stands in for the kubelet on Argo workflow pods. kwok runs no container, so for
// each pod the workflow controller creates in a namespace it runs the pod's containers here,
// the way a node would: the init containers (argoexec init) one after another, then the
// others together (the main container's `/var/run/argo/argoexec emissary -- CMD ARGS`, which
// runs CMD on this host, and argoexec wait, which reports the outputs to the node's
// WorkflowTaskResult). Each container gets the env the controller put on it (field references
// resolved from the live pod), a kubeconfig holding a token of the pod's ServiceAccount (from
// the TokenRequest API, bound to the pod), and a private mount namespace in which the pod's
// emptyDir volumes are private directories bound at their mount paths (/var/run/argo among
// them) and /tmp is the container's own directory, as a container's root filesystem would be.
//
// When the main container has exited, its exit code (from /var/run/argo/ctr/main/exitcode,
// which the emissary writes) is put on the pod as the annotation harness.kfdeploy.dev/exit-code,
// which the harness's kwok stages use to complete the pod as Succeeded or Failed.
//
// Only what workflows of simple shell commands need is supported: emptyDir volumes mounted at
// /var/run/argo, /tmp or an existing directory; other volumes are skipped, and say so in the log.
type ArgoPods struct {
	cfg    ArgoPodsConfig
	mu     sync.Mutex
	seen   map[types.UID]bool
	logs   map[string]*bytes.Buffer // "pod/container" → combined output
	errs   []error
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// ArgoPodsConfig says where pods are and how to run their containers.
type ArgoPodsConfig struct {
	// Client watches pods and patches their annotations; Config's server and CA go into the
	// containers' kubeconfigs (their credentials never do).
	Client kubernetes.Interface
	Config *rest.Config
	// Namespace whose workflow pods (label workflows.argoproj.io/workflow) are run.
	Namespace string
	// Argoexec is the argoexec binary that containers whose command is "argoexec" run.
	Argoexec string
	// Dir is a private directory for the pods' volumes, tokens and logs.
	Dir string
}

// argoWorkflowLabel marks the pods the workflow controller creates.
const argoWorkflowLabel = "workflows.argoproj.io/workflow"

// ExitCodeAnnotation is read by the harness's kwok stages: a pod annotated with a non-zero
// code fails with it, one annotated "0" (or not at all) completes.
const ExitCodeAnnotation = "harness.kfdeploy.dev/exit-code"

// StartArgoPods begins to watch cfg.Namespace and run every workflow pod that appears, until
// Stop. It returns once the watch is established.
func StartArgoPods(ctx context.Context, cfg ArgoPodsConfig) (*ArgoPods, error) {
	if cfg.Client == nil || cfg.Config == nil || cfg.Namespace == "" || cfg.Argoexec == "" || cfg.Dir == "" {
		return nil, errors.New("argo pods: Client, Config, Namespace, Argoexec and Dir are required")
	}
	if _, err := os.Stat(cfg.Argoexec); err != nil {
		return nil, fmt.Errorf("argo pods: argoexec binary: %w (build it with scripts/harness.sh build argoexec)", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, fmt.Errorf("argo pods: unshare (util-linux) is needed for the containers' mount namespaces: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := cfg.Client.CoreV1().Pods(cfg.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("argo pods: watch pods in %s: %w", cfg.Namespace, err)
	}
	a := &ArgoPods{cfg: cfg, seen: map[types.UID]bool{}, logs: map[string]*bytes.Buffer{}, cancel: cancel}
	a.wg.Add(1)
	go a.watch(ctx, w)
	return a, nil
}

// Stop ends the watch and every container still running, and waits for them.
func (a *ArgoPods) Stop() {
	a.cancel()
	a.wg.Wait()
}

// Logs returns each container's output so far, keyed "pod/container".
func (a *ArgoPods) Logs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for k, b := range a.logs {
		out[k] = b.String()
	}
	return out
}

// Errors returns what went wrong running pods (not a container's own non-zero exit).
func (a *ArgoPods) Errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

func (a *ArgoPods) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

func (a *ArgoPods) watch(ctx context.Context, w watch.Interface) {
	defer a.wg.Done()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The API server ends watches now and then; take up again where pods are.
				nw, err := a.cfg.Client.CoreV1().Pods(a.cfg.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel})
				if err != nil {
					if ctx.Err() == nil {
						a.fail(fmt.Errorf("argo pods: watch pods in %s again: %w", a.cfg.Namespace, err))
					}
					return
				}
				w.Stop()
				w = nw
				continue
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod || (ev.Type != watch.Added && ev.Type != watch.Modified) || pod.DeletionTimestamp != nil {
				continue
			}
			a.mu.Lock()
			done := a.seen[pod.UID]
			a.seen[pod.UID] = true
			a.mu.Unlock()
			if done || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
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

// runPod runs pod's containers as a node would and annotates the pod with the main
// container's exit code.
func (a *ArgoPods) runPod(ctx context.Context, pod *corev1.Pod) error {
	podDir := filepath.Join(a.cfg.Dir, pod.Name)
	kubeconfig, err := a.podKubeconfig(ctx, pod, podDir)
	if err != nil {
		return err
	}
	volumes := map[string]string{} // emptyDir volume name → its directory
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil {
			dir := filepath.Join(podDir, "volumes", v.Name)
			// World-writable as an emptyDir is: containers of a pod may run as different users.
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			volumes[v.Name] = dir
		}
	}
	for _, c := range pod.Spec.InitContainers {
		code, err := a.runContainer(ctx, pod, c, podDir, kubeconfig, volumes)
		if err != nil {
			return err
		}
		if code != 0 {
			return a.annotateExitCode(ctx, pod, code)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.runContainer(ctx, pod, c, podDir, kubeconfig, volumes)
			if c.Name == "main" && errs[i] == nil {
				errs[i] = a.reportMainExit(ctx, pod, volumes)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reportMainExit puts the exit code the emissary wrote for the main container on the pod.
func (a *ArgoPods) reportMainExit(ctx context.Context, pod *corev1.Pod, volumes map[string]string) error {
	dir, ok := volumes["var-run-argo"]
	if !ok {
		return errors.New("no var-run-argo volume: not an emissary pod")
	}
	data, err := os.ReadFile(filepath.Join(dir, "ctr", "main", "exitcode"))
	if err != nil {
		return fmt.Errorf("main container's exit code: %w", err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("main container's exit code %q: %w", data, err)
	}
	return a.annotateExitCode(ctx, pod, code)
}

func (a *ArgoPods) annotateExitCode(ctx context.Context, pod *corev1.Pod, code int) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ExitCodeAnnotation, strconv.Itoa(code))
	_, err := a.cfg.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("annotate exit code %d: %w", code, err)
	}
	return nil
}

// podKubeconfig writes a kubeconfig for the pod's ServiceAccount, with a token bound to the pod.
func (a *ArgoPods) podKubeconfig(ctx context.Context, pod *corev1.Pod, podDir string) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	expiry := int64(3600)
	tr, err := a.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &expiry,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s: %w", sa, err)
	}
	cluster := &clientcmdapi.Cluster{Server: a.cfg.Config.Host, CertificateAuthorityData: a.cfg.Config.CAData, CertificateAuthority: a.cfg.Config.CAFile}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = cluster
	kc.AuthInfos["pod"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "pod", Namespace: pod.Namespace}
	kc.CurrentContext = "pod"
	if err := os.MkdirAll(podDir, 0o700); err != nil {
		return "", fmt.Errorf("pod directory: %w", err)
	}
	path := filepath.Join(podDir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// mountScript runs in the container's new mount namespace (unshare --mount makes its mounts
// private): it gives /run a fresh tmpfs, so /var/run/argo can be created without touching the
// host, binds each SRC DST pair given before "--", and executes the rest.
const mountScript = `set -e
mount -t tmpfs -o mode=0755 harness-run /run
while [ "$1" != "--" ]; do
	mkdir -p "$2"
	mount --bind "$1" "$2"
	shift 2
done
shift
exec "$@"`

// runContainer runs c to its end and returns its exit code; err is for failures to run it.
func (a *ArgoPods) runContainer(ctx context.Context, pod *corev1.Pod, c corev1.Container, podDir, kubeconfig string, volumes map[string]string) (int, error) {
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 {
		return 0, fmt.Errorf("container %s has no command (the image's entrypoint is unknown here)", c.Name)
	}
	if argv[0] == "argoexec" {
		argv[0] = a.cfg.Argoexec
	}
	logBuf := a.logBuffer(pod.Name + "/" + c.Name)
	logw := &lockedWriter{mu: &a.mu, w: logBuf}

	// The container's root filesystem, as far as it matters here: its own /tmp.
	tmp := filepath.Join(podDir, "ctr", c.Name, "tmp")
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	if err := os.Chmod(tmp, 0o1777); err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	binds := map[string]string{"/tmp": tmp} // mount path → source
	for _, m := range c.VolumeMounts {
		src, ok := volumes[m.Name]
		if !ok {
			fmt.Fprintf(logw, "harness: volume %s at %s is not an emptyDir: not mounted\n", m.Name, m.MountPath)
			continue
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		if m.MountPath != "/tmp" && !strings.HasPrefix(m.MountPath, "/run/") && !strings.HasPrefix(m.MountPath, "/var/run/") {
			if _, err := os.Stat(m.MountPath); err != nil {
				fmt.Fprintf(logw, "harness: %s does not exist on this host: volume %s not mounted\n", m.MountPath, m.Name)
				continue
			}
		}
		binds[m.MountPath] = src
	}
	// /tmp last: later sources may lie under the host's /tmp.
	paths := make([]string, 0, len(binds))
	for p := range binds {
		if p != "/tmp" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	paths = append(paths, "/tmp")
	args := []string{"--mount", "--", "sh", "-c", mountScript, "sh"}
	for _, p := range paths {
		args = append(args, binds[p], strings.Replace(p, "/var/run/", "/run/", 1))
	}
	args = append(args, "--")
	args = append(args, argv...)

	env, err := containerEnv(pod, c)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(env, "KUBECONFIG="+kubeconfig, "PATH="+os.Getenv("PATH"), "HOME="+tmp)
	if c.WorkingDir != "" {
		if _, err := os.Stat(c.WorkingDir); err == nil {
			cmd.Dir = c.WorkingDir
		}
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	// Stop the whole container with the harness: its own process group, killed on cancel,
	// and SIGKILL if the harness itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && ctx.Err() == nil {
		fmt.Fprintf(logw, "harness: container %s exited with %d\n", c.Name, exitErr.ExitCode())
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	}
	return 0, nil
}

func (a *ArgoPods) logBuffer(key string) *bytes.Buffer {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.logs[key]
	if !ok {
		b = &bytes.Buffer{}
		a.logs[key] = b
	}
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// containerEnv resolves c's env against the live pod: plain values and the field references
// the workflow controller uses (ARGO_POD_NAME, ARGO_POD_UID...). Other sources are refused.
func containerEnv(pod *corev1.Pod, c corev1.Container) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			v, err := podField(pod, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env = append(env, e.Name+"="+v)
		default:
			return nil, fmt.Errorf("env %s: only values and fieldRef are supported for workflow pods", e.Name)
		}
	}
	if len(c.EnvFrom) > 0 {
		return nil, errors.New("envFrom is not supported for workflow pods")
	}
	return env, nil
}

func podField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	}
	for _, m := range []struct {
		prefix string
		values map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if key, ok := strings.CutPrefix(path, m.prefix+"['"); ok {
			return m.values[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("field %s is not supported here", path)
}
