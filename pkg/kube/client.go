// Package kube is the connection to the Kubernetes API server that every other package under
// pkg/kube builds on: the clients, the retry transport, the API server's warnings, paginated
// lists and the cluster's identity. What is done with the connection lives above it: the
// inventory (pkg/kube/inventory), the lock (pkg/kube/lock), the reads of one command
// (pkg/kube/snapshot), readiness and diagnosis (pkg/kube/readiness) and the apply, delete and
// diff engine (pkg/kube/engine).
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client bundles the clients kfdeploy uses, built once per run from one rest.Config and handed
// to everything that talks to the cluster (apply, delete, diff, status, preflight, top nodes).
type Client struct {
	Config *rest.Config
	Typed  kubernetes.Interface
	// Fast is Typed speaking protobuf: decoding a page of pods from protobuf is several times
	// cheaper than from JSON, which matters for the large lists of preflight and top nodes
	// (nodes, pods, PersistentVolumes of big clusters).
	Fast      kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Discovery discovery.CachedDiscoveryInterface
	Mapper    meta.ResettableRESTMapper
	// Context is the kubeconfig context the client was built from ("" when none was selected,
	// e.g. with --server).
	Context string
	probe   kubernetes.Interface // without retries, for the first contact
	// LockTiming paces the app's lock (see pkg/kube/lock); zero is DefaultLockTiming.
	LockTiming LockTiming
}

// noClientRateLimit turns client-go's token bucket off (a negative QPS): the API server's
// Priority and Fairness paces a large apply, answering 429 with Retry-After, which the retry
// transport (retry.go) honours; --concurrency bounds the requests in flight.
const noClientRateLimit = -1

// Connect builds the clients and checks that the API server answers: the first contact of a
// run, failing fast with one line that says what to check.
func Connect(ctx context.Context, getter genericclioptions.RESTClientGetter) (*Client, error) {
	c, err := NewClient(getter)
	if err != nil {
		return nil, err
	}
	if _, err := c.ServerVersion(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// errNoCluster is the error for a kubeconfig that names no cluster at all.
var errNoCluster = errors.New("no cluster configured: set KUBECONFIG, pass --kubeconfig FILE, or create ~/.kube/config")

// NewClient builds the clients from kubeconfig flags (cli-runtime's ConfigFlags: --kubeconfig,
// --context, KUBECONFIG, ...) without contacting the server. Discovery is cached on disk and in
// memory for the run.
func NewClient(getter genericclioptions.RESTClientGetter) (*Client, error) {
	// With no cluster in any kubeconfig and no --server, client-go falls back to its default
	// server (localhost:8080), which is never what the user meant.
	if f, ok := getter.(*genericclioptions.ConfigFlags); ok && (f.APIServer == nil || *f.APIServer == "") {
		if raw, err := f.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Clusters) == 0 {
			return nil, errNoCluster
		}
	}
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errNoCluster
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = noClientRateLimit, 0
	cfg.UserAgent = "kfdeploy"
	disc, err := getter.ToDiscoveryClient()
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	mapper, err := getter.ToRESTMapper()
	if err != nil {
		return nil, fmt.Errorf("rest mapper: %w", err)
	}
	resettable, ok := mapper.(meta.ResettableRESTMapper)
	if !ok {
		return nil, fmt.Errorf("rest mapper %T cannot be reset after CRDs are installed", mapper)
	}
	c, err := NewClientFromConfig(cfg, disc, resettable)
	if err != nil {
		return nil, err
	}
	c.Context = contextName(getter)
	return c, nil
}

// contextName is the kubeconfig context a getter selects: --context, else the current context.
func contextName(getter genericclioptions.RESTClientGetter) string {
	if f, ok := getter.(*genericclioptions.ConfigFlags); ok && f.Context != nil && *f.Context != "" {
		return *f.Context
	}
	raw, err := getter.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
}

// NewClientFromConfig builds the clients from a rest.Config and a discovery-backed mapper.
// Requests are retried while the API server is unreachable (see retryTransport), except the
// first contact in ServerVersion, which must fail fast.
func NewClientFromConfig(cfg *rest.Config, disc discovery.CachedDiscoveryInterface, mapper meta.ResettableRESTMapper) (*Client, error) {
	probe := cfg
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(withRetry)
	cfg.WarningHandlerWithContext = newWarnings()
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	fastCfg := rest.CopyConfig(cfg)
	fastCfg.ContentType = runtime.ContentTypeProtobuf
	fastCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	fast, err := kubernetes.NewForConfig(fastCfg)
	if err != nil {
		return nil, fmt.Errorf("protobuf client: %w", err)
	}
	probeClient, err := kubernetes.NewForConfig(probe)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{Config: cfg, Typed: typed, Fast: fast, Dynamic: dyn, Metadata: md, Discovery: disc, Mapper: mapper, probe: probeClient}, nil
}

// ServerVersion asks the API server for its version; a failure to connect becomes one line
// that names the server and says what to check.
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body, err := c.probe.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, Unreachable(c.Config.Host, err)
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("decode server version from %s: %w", c.Config.Host, err)
	}
	return &info, nil
}

// Unreachable explains a failed first contact with the API server: a server that answered but
// refused the credentials is told apart from one that could not be reached.
func Unreachable(host string, err error) error {
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return fmt.Errorf("the Kubernetes API server at %s refused the credentials: %w (check the user of the kubeconfig context: its token or client certificate may have expired)", host, err)
	}
	reason := err.Error()
	var urlErr *url.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "no answer within 15s"
	case errors.As(err, &opErr):
		reason = opErr.Err.Error()
	case errors.As(err, &urlErr):
		reason = urlErr.Err.Error()
	}
	return fmt.Errorf("cannot reach the Kubernetes API server at %s: %s (check --kubeconfig, --context or KUBECONFIG, and that the cluster is running)", host, reason)
}

// Mapping resolves a kind to its resource; unknown kinds get an error users can act on.
func (c *Client) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the cluster does not serve kind %s (apiVersion %s): install its CustomResourceDefinition or fix apiVersion/kind", gvk.Kind, gvk.GroupVersion())
		}
		return nil, fmt.Errorf("map %s: %w", gvk, err)
	}
	return m, nil
}

// ResourceFor returns the dynamic client for a mapping in a namespace.
func (c *Client) ResourceFor(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(namespace)
	}
	return c.Dynamic.Resource(m.Resource)
}

// CRDResource is where CustomResourceDefinitions are read.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// IsNamespaced reports whether a mapping is namespace-scoped.
func IsNamespaced(m *meta.RESTMapping) bool { return m.Scope.Name() == meta.RESTScopeNameNamespace }

// KindString is "Kind.group", or "Kind" for the core group, as used in ApplySet annotations.
func KindString(gk schema.GroupKind) string {
	if gk.Group == "" {
		return gk.Kind
	}
	return gk.Kind + "." + gk.Group
}

// ParseKinds reads a list of kinds as KindString writes them, separated by commas.
func ParseKinds(s string) []schema.GroupKind {
	var gks []schema.GroupKind
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			gks = append(gks, schema.ParseGroupKind(part))
		}
	}
	return gks
}
