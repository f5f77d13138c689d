package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Program describes one upstream program to run in place of a workload's
// container.
type Program struct {
	// Name identifies the process (its directory and log file); default: the
	// workload's name. Unique per Harness.
	Name string
	// Binary is the program's path (e.g. from BinaryPath).
	Binary string
	// Namespace, and Deployment or StatefulSet: the live workload whose pod
	// template describes the program.
	Namespace   string
	Deployment  string
	StatefulSet string
	// Container is the container's name (an init container's too); default:
	// the first container. Nothing else of the pod runs: init containers and
	// sidecars only when started as Programs of their own.
	Container string
	// Args, if set, rewrites the resolved arguments (the container's command
	// after its first word, then its args, with $(VAR) expanded and mount
	// paths rewritten), e.g. with SetFlag to move a port.
	Args func(args []string) []string
	// ExtraArgs are appended after Args.
	ExtraArgs []string
	// Env sets (or replaces) environment variables after the container's own.
	Env map[string]string
	// UnsetEnv removes the container's variables of these names.
	UnsetEnv []string
	// Ports maps a container port to the local port the process really
	// listens on (default: the same number), for Service forwarding, when
	// Args moved it (two programs cannot bind the same port).
	Ports map[int32]int32
	// Services names Services of Namespace to forward to this process even
	// though their selector does not match its pod labels.
	Services []string
	// KubeconfigFlag, if set (e.g. "--kubeconfig"), passes the kubeconfig by
	// flag too (FLAG=PATH), for programs that ignore $KUBECONFIG.
	KubeconfigFlag string
	// KeepReplicas leaves the workload's replicas alone (default: scaled to
	// 0 and kept there while the harness runs).
	KeepReplicas bool
}

func (p Program) workload() (kind, name string) {
	if p.StatefulSet != "" {
		return "StatefulSet", p.StatefulSet
	}
	return "Deployment", p.Deployment
}

// ServiceAccountDir is the in-cluster path of the ServiceAccount files; the
// harness writes them (token, ca.crt, namespace) into the process's
// directory and rewrites this prefix in args and env to it.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// tokenLifetime is the lifetime of the tokens handed to a program; longer
// than any test run.
const tokenLifetime = 2 * 3600

// Start reads the program's live workload, scales it to 0, and starts the
// program as a local process as described in the package documentation.
func (h *Harness) Start(ctx context.Context, p Program) (*Process, error) {
	kind, wname := p.workload()
	if p.Namespace == "" || wname == "" || p.Binary == "" {
		return nil, errors.New("harness: Program needs Binary, Namespace and Deployment or StatefulSet")
	}
	if p.Name == "" {
		p.Name = wname
	}
	fail := func(err error) (*Process, error) {
		return nil, fmt.Errorf("harness: start %s (%s %s/%s): %w", p.Name, kind, p.Namespace, wname, err)
	}
	if _, err := os.Stat(p.Binary); err != nil {
		return fail(fmt.Errorf("binary: %w (build it with scripts/harness.sh build)", err))
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return fail(fmt.Errorf("util-linux unshare is not on PATH: it gives the program its own /etc/hosts and /tmp: %w", err))
	}
	h.mu.Lock()
	for _, r := range h.programs {
		if r.prog.Name == p.Name {
			h.mu.Unlock()
			return fail(errors.New("a program of this name was already started"))
		}
	}
	h.mu.Unlock()

	tpl, err := h.workloadTemplate(ctx, p)
	if err != nil {
		return fail(err)
	}
	if !p.KeepReplicas {
		if err := h.scaleToZero(ctx, p); err != nil {
			return fail(err)
		}
	}
	c, err := pickContainer(&tpl.Spec, p.Container)
	if err != nil {
		return fail(err)
	}
	dir, err := filepath.Abs(h.processDir(p.Name))
	if err != nil {
		return fail(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "home"), filepath.Join(dir, "volumes"), filepath.Join(dir, "serviceaccount")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	sa := tpl.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tokens := func(ctx context.Context, audience string, seconds int64) (string, error) {
		return h.token(ctx, p.Namespace, sa, audience, seconds)
	}
	token, err := tokens(ctx, "", tokenLifetime)
	if err != nil {
		return fail(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, h.server, h.ca, p.Namespace, sa, token); err != nil {
		return fail(err)
	}
	for name, data := range map[string][]byte{"token": []byte(token), "ca.crt": h.ca, "namespace": []byte(p.Namespace)} {
		if err := os.WriteFile(filepath.Join(dir, "serviceaccount", name), data, 0o600); err != nil {
			return fail(err)
		}
	}

	r := &resolver{kube: h.kube, tokens: tokens, ca: h.ca, pod: podInfo{
		name: wname + "-harness", namespace: p.Namespace, uid: newUID(), serviceAccount: sa,
		nodeName: "harness", labels: tpl.Labels, annotations: tpl.Annotations,
	}}
	if tpl.Spec.EnableServiceLinks == nil || *tpl.Spec.EnableServiceLinks {
		svcs, err := h.kube.CoreV1().Services(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fail(fmt.Errorf("list services for the service link variables: %w", err))
		}
		r.serviceEnv = serviceLinkEnv(svcs.Items)
	}
	env, err := r.env(ctx, c)
	if err != nil {
		return fail(err)
	}
	// Volumes: materialise the mounted ones; map mount paths to them.
	rewrites := []bind{{src: filepath.Join(dir, "serviceaccount"), dst: ServiceAccountDir}}
	box := &sandbox{work: dir}
	// The in-cluster ServiceAccount files, for programs that read them by
	// path (e.g. the namespace file); without KUBERNETES_SERVICE_HOST no
	// client takes them for an in-cluster config.
	box.plan(filepath.Join(dir, "serviceaccount"), ServiceAccountDir, false)
	vols := map[string]corev1.Volume{}
	for _, v := range tpl.Spec.Volumes {
		vols[v.Name] = v
	}
	done := map[string]bool{}
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return fail(fmt.Errorf("container %s mounts volume %s, which the pod does not define", c.Name, m.Name))
		}
		vdir := filepath.Join(dir, "volumes", m.Name)
		if !done[m.Name] {
			ok, err := r.materialise(ctx, c, v, vdir)
			if err != nil {
				return fail(err)
			}
			if !ok {
				h.opts.Logf("harness: %s: volume %s (%s) is an empty directory here", p.Name, m.Name, volumeKind(v))
			}
			done[m.Name] = true
		}
		src := vdir
		if m.SubPath != "" {
			src = filepath.Join(vdir, filepath.Clean("/"+m.SubPath))
		}
		rewrites = append(rewrites, bind{src: src, dst: m.MountPath})
		st, err := os.Stat(src)
		if err != nil {
			// A subPath the volume does not have: the kubelet creates it.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fail(err)
			}
		}
		if !box.plan(src, m.MountPath, err == nil && !st.IsDir()) {
			h.opts.Logf("harness: %s: volume %s is not mounted at %s (only args and env naming it are rewritten to %s)", p.Name, m.Name, m.MountPath, src)
		}
	}

	// Command line: the image's entrypoint is the binary; the container's
	// command after its first word and its args follow, expanded with the
	// container's env as the kubelet does.
	envMap := map[string]string{}
	for _, kv := range env {
		envMap[kv[0]] = kv[1]
	}
	var args []string
	if len(c.Command) > 1 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	for i := range args {
		args[i] = rewritePaths(expand(args[i], mapLookup(envMap)), rewrites)
	}
	if p.Args != nil {
		args = p.Args(args)
	}
	args = append(args, p.ExtraArgs...)
	if p.KubeconfigFlag != "" {
		args = append(args, p.KubeconfigFlag+"="+kubeconfig)
	}

	// Environment: nothing of the test's own (its KUBECONFIG is the admin's).
	unset := map[string]bool{}
	for _, k := range p.UnsetEnv {
		unset[k] = true
	}
	procEnv := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
	}
	for _, kv := range env {
		if _, override := p.Env[kv[0]]; !unset[kv[0]] && !override && kv[0] != "KUBECONFIG" {
			procEnv = append(procEnv, kv[0]+"="+rewritePaths(kv[1], rewrites))
		}
	}
	procEnv = append(procEnv, "KUBECONFIG="+kubeconfig)
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		procEnv = append(procEnv, k+"="+p.Env[k])
	}

	hosts := filepath.Join(dir, "hosts")
	// With the Services created since the last resync (e.g. just applied).
	if err := h.writeHosts(ctx, hosts, p.Namespace); err != nil {
		return fail(err)
	}
	box.hostsFile = hosts
	box.keep = []string{dir}
	if bin, err := filepath.Abs(p.Binary); err == nil {
		box.keep = append(box.keep, filepath.Dir(bin))
	}
	argv := append([]string{p.Binary}, args...)
	workdir := dir
	if st, err := os.Stat(c.WorkingDir); c.WorkingDir != "" && err == nil && st.IsDir() {
		workdir = c.WorkingDir
	}
	proc, err := h.launch(p.Name, dir, box, argv, procEnv, workdir)
	if err != nil {
		return fail(err)
	}
	run := &running{prog: p, proc: proc, labels: tpl.Labels, ports: p.Ports, named: map[string]int32{}, explicit: map[string]bool{}}
	for _, cp := range c.Ports {
		if cp.Name != "" {
			run.named[cp.Name] = cp.ContainerPort
		}
	}
	for _, s := range p.Services {
		run.explicit[s] = true
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		proc.Stop(h.opts.StopGrace)
		return fail(errors.New("harness closed"))
	}
	h.procs = append(h.procs, proc)
	h.programs = append(h.programs, run)
	h.mu.Unlock()
	h.opts.Logf("harness: started %s (pid %d, service account %s/%s): %s; log %s", p.Name, proc.Pid(), p.Namespace, sa, strings.Join(argv, " "), proc.LogPath)
	if err := h.forwardServices(ctx); err != nil {
		h.opts.Logf("harness: %v", err)
	}
	return proc, nil
}

// launch starts argv in a new private mount namespace set up by box, with
// exactly env, in workdir, logging to dir/NAME.log, forked from the spawner's
// thread. The caller registers the process (h.procs) for Close.
func (h *Harness) launch(name, dir string, box *sandbox, argv, env []string, workdir string) (*Process, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("util-linux unshare is not on PATH: it gives the program its own /etc/hosts and /tmp: %w", err)
	}
	script := box.script()
	if err := os.WriteFile(filepath.Join(dir, "sandbox.sh"), []byte(script), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"}, argv...)...)
	cmd.Env = env
	cmd.Dir = workdir
	proc := &Process{Name: name, Dir: dir, LogPath: filepath.Join(dir, name+".log"), Argv: argv}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, errors.New("harness closed")
	}
	if err := h.spawn.run(func() error { return proc.start(cmd) }); err != nil {
		return nil, err
	}
	return proc, nil
}

func pickContainer(spec *corev1.PodSpec, name string) (*corev1.Container, error) {
	if len(spec.Containers) == 0 {
		return nil, errors.New("the pod template has no containers")
	}
	if name == "" {
		return &spec.Containers[0], nil
	}
	var names []string
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], nil
			}
			names = append(names, list[i].Name)
		}
	}
	return nil, fmt.Errorf("no container %q (containers and init containers: %s)", name, strings.Join(names, ", "))
}

func volumeKind(v corev1.Volume) string {
	switch {
	case v.HostPath != nil:
		return "hostPath"
	case v.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case v.CSI != nil:
		return "csi"
	case v.Ephemeral != nil:
		return "ephemeral"
	}
	return "unsupported kind"
}

// rewritePaths replaces a leading mount path in s, or one right after the
// first '=' (as in --config=/etc/app/config.yaml), with its materialised
// directory. The longest matching mount path wins.
func rewritePaths(s string, mounts []bind) string {
	try := func(v string) (string, bool) {
		best := -1
		for i, m := range mounts {
			if v == m.dst || strings.HasPrefix(v, strings.TrimSuffix(m.dst, "/")+"/") {
				if best < 0 || len(m.dst) > len(mounts[best].dst) {
					best = i
				}
			}
		}
		if best < 0 {
			return v, false
		}
		return mounts[best].src + strings.TrimPrefix(v, strings.TrimSuffix(mounts[best].dst, "/")), true
	}
	if v, ok := try(s); ok {
		return v
	}
	if k, v, ok := strings.Cut(s, "="); ok {
		if nv, ok := try(v); ok {
			return k + "=" + nv
		}
	}
	return s
}

// SetFlag returns args with flag (e.g. "--port") set to value: an existing
// "--port=x" or "--port x" is replaced, otherwise "--port=value" is appended.
func SetFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == flag && i+1 < len(out) {
			out[i+1] = value
			return out
		}
		if strings.HasPrefix(a, flag+"=") {
			out[i] = flag + "=" + value
			return out
		}
	}
	return append(out, flag+"="+value)
}

// DropFlag returns args without flag ("--flag=x", or "--flag x" when the next
// word does not start with '-').
func DropFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, flag+"=") {
			continue
		}
		if a == flag {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// token issues a token for ServiceAccount namespace/name (TokenRequest API).
func (h *Harness) token(ctx context.Context, namespace, name, audience string, seconds int64) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	tr, err := h.kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// writeKubeconfig writes a kubeconfig (mode 0600) that authenticates as the
// ServiceAccount with token and verifies the API server against ca.
func writeKubeconfig(path, server string, ca []byte, namespace, sa, token string) error {
	user := "system:serviceaccount:" + namespace + ":" + sa
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "harness",
		"clusters": []any{map[string]any{"name": "test-cluster", "cluster": map[string]any{
			"server": server, "certificate-authority-data": ca,
		}}},
		"users":    []any{map[string]any{"name": user, "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": "harness", "context": map[string]any{"cluster": "test-cluster", "user": user, "namespace": namespace}}},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
