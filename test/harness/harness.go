// Package harness runs real upstream programs (controllers, webhook servers)
// as local processes against the local test cluster, in place of the
// Deployments that kfdeploy applied: each takes the live pod template's
// command, args, env and volumes, the pod's ServiceAccount (through a token
// from the TokenRequest API), the cluster's Service names (a private
// /etc/hosts) and its Services' ClusterIPs (forwarded to the process). See
// README.md.
package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// Options configure a Harness.
type Options struct {
	// Dir holds every process's private directory and log (required; a
	// test's t.TempDir() or t.ArtifactDir()).
	Dir string
	// Logf reports what the harness does (e.g. t.Logf); nil: silent.
	Logf func(format string, args ...any)
	// Resync is how often the harness re-reads Services (new ones get a
	// hosts entry and a forwarder) and scales the programs' workloads back
	// to 0 (default 2s).
	Resync time.Duration
	// StopGrace is how long Close waits after SIGTERM before SIGKILL
	// (default 5s).
	StopGrace time.Duration
}

// Harness runs Programs against one cluster. Close stops everything.
type Harness struct {
	opts   Options
	rest   *rest.Config
	kube   kubernetes.Interface
	ca     []byte
	server string

	mu        sync.Mutex
	procs     []*Process
	programs  []*running
	forwards  map[string]*forwarder // by listen address
	direct    map[string]bool       // ClusterIP:port the processes serve themselves
	hosts     []string              // hosts files to keep current
	hostsBody string
	closed    bool

	cancel context.CancelFunc
	loop   sync.WaitGroup
}

// running is a started Program and what the resync loop keeps for it.
type running struct {
	prog     Program
	proc     *Process
	labels   map[string]string
	ports    map[int32]int32  // containerPort → local port
	named    map[string]int32 // container port name → containerPort
	explicit map[string]bool  // Services named in Program.Services
}

// New connects to the cluster of cfg (its CA and API server address are what
// the programs' kubeconfigs use; its credentials are never handed to them) and
// starts the resync loop.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Harness, error) {
	if opts.Dir == "" {
		return nil, errors.New("harness: Options.Dir is required (e.g. t.TempDir())")
	}
	if opts.Resync <= 0 {
		opts.Resync = 2 * time.Second
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("harness: read the cluster CA %s: %w", cfg.CAFile, err)
		}
		ca = b
	}
	if len(ca) == 0 {
		return nil, errors.New("harness: the rest config has no CA: the programs' kubeconfigs verify the API server's certificate")
	}
	server, err := loopbackServer(cfg.Host)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("harness: client: %w", err)
	}
	h := &Harness{opts: opts, rest: cfg, kube: kube, ca: ca, server: server, forwards: map[string]*forwarder{}}
	if err := h.refreshHosts(ctx); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.loop.Add(1)
	go h.resyncLoop(lctx)
	return h, nil
}

// loopbackServer checks that the API server is on loopback (every program
// talks only to loopback) and returns its https URL.
func loopbackServer(host string) (string, error) {
	u := strings.TrimSuffix(host, "/")
	hp, ok := strings.CutPrefix(u, "https://")
	if !ok {
		return "", fmt.Errorf("harness: API server %q is not https", host)
	}
	h, _, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("harness: API server %q: %w", host, err)
	}
	if ip := net.ParseIP(h); (ip == nil || !ip.IsLoopback()) && h != "localhost" {
		return "", fmt.Errorf("harness: API server %q is not on loopback; the harness runs programs against the local test cluster only", host)
	}
	return u, nil
}

// Close stops every process (SIGTERM, SIGKILL after StopGrace), closes every
// forwarder and stops the resync loop. The programs' workloads stay at 0.
func (h *Harness) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	procs := append([]*Process(nil), h.procs...)
	h.mu.Unlock()
	h.cancel()
	h.loop.Wait()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(h.opts.StopGrace)
		}()
	}
	wg.Wait()
	h.mu.Lock()
	for _, f := range h.forwards {
		f.Close()
	}
	h.forwards = map[string]*forwarder{}
	h.mu.Unlock()
}

// Processes returns every process started so far.
func (h *Harness) Processes() []*Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Process(nil), h.procs...)
}

// CheckNoForbidden fails t for every "forbidden" line any process logged.
func (h *Harness) CheckNoForbidden(t testing.TB) {
	t.Helper()
	for _, p := range h.Processes() {
		for _, l := range p.Forbidden() {
			t.Errorf("%s was refused an API request (RBAC): %s (log: %s)", p.Name, l, p.LogPath)
		}
	}
}

// Forward listens on the ClusterIP of Service namespace/name at port and
// forwards each connection to localAddr: a stand-in for what the Service
// would reach in a real cluster (e.g. a database Service to a local
// database server). It stays until Close.
func (h *Harness) Forward(ctx context.Context, namespace, name string, port int32, localAddr string) error {
	svc, err := h.kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("harness: forward service %s/%s: %w", namespace, name, err)
	}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("harness: service %s/%s has ClusterIP %q, not a loopback address: start the cluster with a KFDEPLOY_SERVICE_CIDR inside 127.0.0.0/8", namespace, name, svc.Spec.ClusterIP)
	}
	return h.ensureForward(net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), localAddr, namespace+"/"+name)
}

func (h *Harness) ensureForward(listen, target, what string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("harness: closed")
	}
	if f, ok := h.forwards[listen]; ok {
		if f.target == target {
			return nil
		}
		return fmt.Errorf("harness: %s (%s) is already forwarded to %s, not %s", listen, what, f.target, target)
	}
	f, err := startForwarder(listen, target)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			_, port, _ := net.SplitHostPort(listen)
			return fmt.Errorf("harness: service %s: %w: a process listening on the wildcard address at port %s holds that port on every loopback address; move it by flag (Program.Args and Program.Ports)", what, err, port)
		}
		return fmt.Errorf("harness: service %s: %w", what, err)
	}
	h.forwards[listen] = f
	h.opts.Logf("harness: forwarding %s (service %s) to %s", listen, what, target)
	return nil
}

// noteDirect logs once that a Service port is served by the process itself.
func (h *Harness) noteDirect(listen, svc, prog string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.direct == nil {
		h.direct = map[string]bool{}
	}
	if h.direct[listen] {
		return
	}
	h.direct[listen] = true
	h.opts.Logf("harness: %s (service %s) is the port %s listens on itself: no forwarder (the program must listen on the wildcard address)", listen, svc, prog)
}

// ScaleDown scales the workload of every started program to 0 replicas again
// (apply sets the rendered replica count back). The resync loop does the
// same every Options.Resync; call it right after an apply to not wait.
func (h *Harness) ScaleDown(ctx context.Context) error {
	h.mu.Lock()
	progs := append([]*running(nil), h.programs...)
	h.mu.Unlock()
	var errs []error
	for _, r := range progs {
		if err := h.scaleToZero(ctx, r.prog); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Harness) scaleToZero(ctx context.Context, p Program) error {
	kind, name := p.workload()
	var c scaler = h.kube.AppsV1().Deployments(p.Namespace)
	if kind == "StatefulSet" {
		c = h.kube.AppsV1().StatefulSets(p.Namespace)
	}
	// Through the scale subresource: a later server-side apply of the
	// rendered replica count does not conflict with it. The controllers
	// update the object all the time: retry on conflicts.
	var from int32
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := c.GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		from = sc.Spec.Replicas
		if from == 0 {
			return nil
		}
		sc.Spec.Replicas = 0
		_, err = c.UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("harness: scale %s %s/%s to 0: %w", kind, p.Namespace, name, err)
	}
	if from != 0 {
		h.opts.Logf("harness: scaled %s %s/%s from %d to 0 replicas", kind, p.Namespace, name, from)
	}
	return nil
}

func (h *Harness) resyncLoop(ctx context.Context) {
	defer h.loop.Done()
	t := time.NewTicker(h.opts.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.refreshHosts(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logf("harness: %v", err)
		}
		if err := h.forwardServices(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logf("harness: %v", err)
		}
		if err := h.ScaleDown(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logf("harness: %v", err)
		}
	}
}

// refreshHosts renders the hosts file from every Service of the cluster and
// rewrites the processes' copies in place (same inode: the bind mount in
// each process's namespace shows the new content).
func (h *Harness) refreshHosts(ctx context.Context) error {
	svcs, err := h.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("harness: list services: %w", err)
	}
	base, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return fmt.Errorf("harness: read /etc/hosts: %w", err)
	}
	body := hostsFile(string(base), svcs.Items)
	h.mu.Lock()
	defer h.mu.Unlock()
	if body == h.hostsBody {
		return nil
	}
	h.hostsBody = body
	for _, f := range h.hosts {
		if err := rewriteInPlace(f, body); err != nil {
			return fmt.Errorf("harness: update %s: %w", f, err)
		}
	}
	return nil
}

// hostsFile is base followed by every Service name form that cluster DNS
// would resolve to the Service's ClusterIP.
func hostsFile(base string, svcs []corev1.Service) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "\n"))
	b.WriteString("\n# Services of the test cluster (kfdeploy test harness)\n")
	sort.Slice(svcs, func(i, j int) bool {
		if svcs[i].Namespace != svcs[j].Namespace {
			return svcs[i].Namespace < svcs[j].Namespace
		}
		return svcs[i].Name < svcs[j].Name
	})
	for _, s := range svcs {
		ip := net.ParseIP(s.Spec.ClusterIP)
		if ip == nil {
			continue // headless or ExternalName
		}
		n, ns := s.Name, s.Namespace
		fmt.Fprintf(&b, "%s %s.%s.svc.cluster.local %s.%s.svc %s.%s %s\n", ip, n, ns, n, ns, n, ns, n)
	}
	return b.String()
}

func rewriteInPlace(path, body string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// forwardServices starts a forwarder for every port of every Service that
// selects a running program's pod labels (or that the program names).
func (h *Harness) forwardServices(ctx context.Context) error {
	h.mu.Lock()
	progs := append([]*running(nil), h.programs...)
	h.mu.Unlock()
	byNS := map[string][]corev1.Service{}
	var errs []error
	for _, r := range progs {
		if !r.proc.Running() {
			continue
		}
		ns := r.prog.Namespace
		if _, ok := byNS[ns]; !ok {
			l, err := h.kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				errs = append(errs, fmt.Errorf("list services in %s: %w", ns, err))
				continue
			}
			byNS[ns] = l.Items
		}
		for _, s := range byNS[ns] {
			if !r.explicit[s.Name] && (len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(r.labels))) {
				continue
			}
			ip := net.ParseIP(s.Spec.ClusterIP)
			if ip == nil {
				continue
			}
			if !ip.IsLoopback() {
				errs = append(errs, fmt.Errorf("service %s/%s has ClusterIP %s, not a loopback address: start the cluster with a KFDEPLOY_SERVICE_CIDR inside 127.0.0.0/8", ns, s.Name, ip))
				continue
			}
			for _, sp := range s.Spec.Ports {
				if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
					continue
				}
				cport := sp.TargetPort.IntVal
				if sp.TargetPort.StrVal != "" {
					cport = r.named[sp.TargetPort.StrVal]
				}
				if cport == 0 && sp.TargetPort.StrVal == "" {
					cport = sp.Port
				}
				if cport == 0 {
					errs = append(errs, fmt.Errorf("service %s/%s port %d: target port %q is no port of container %s", ns, s.Name, sp.Port, sp.TargetPort.StrVal, r.prog.Container))
					continue
				}
				local := cport
				if lp, ok := r.ports[cport]; ok {
					local = lp
				}
				listen := net.JoinHostPort(ip.String(), strconv.Itoa(int(sp.Port)))
				target := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(local)))
				if local == sp.Port {
					// Same port: a process listening on the wildcard address
					// (the usual ":PORT") already receives ClusterIP:PORT, all
					// of 127.0.0.0/8 being local; a forwarder could not even
					// bind it (the wildcard listener holds the port).
					h.noteDirect(listen, ns+"/"+s.Name, r.prog.Name)
					continue
				}
				if err := h.ensureForward(listen, target, ns+"/"+s.Name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// scaler is the scale subresource of a Deployment or StatefulSet client.
type scaler interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

// workloadTemplate reads the pod template of the program's workload.
func (h *Harness) workloadTemplate(ctx context.Context, p Program) (*corev1.PodTemplateSpec, error) {
	kind, name := p.workload()
	switch kind {
	case "StatefulSet":
		s, err := h.kube.AppsV1().StatefulSets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read statefulset %s/%s: %w", p.Namespace, name, err)
		}
		return &s.Spec.Template, nil
	case "Deployment":
		d, err := h.kube.AppsV1().Deployments(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read deployment %s/%s: %w", p.Namespace, name, err)
		}
		return &d.Spec.Template, nil
	}
	return nil, fmt.Errorf("unsupported workload kind %q (Deployment or StatefulSet)", kind)
}

func (h *Harness) processDir(name string) string { return filepath.Join(h.opts.Dir, name) }

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
