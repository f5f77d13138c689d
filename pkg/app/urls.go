package app

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
)

// Annotations the components put on Services for these URLs: the gateway Service says its
// scheme and host name (ambassador.jsonnet), every routed Service its routes (k.libsonnet,
// ambassadorConfig).
const (
	annGatewayScheme   = "kfdeploy.dev/gateway-scheme"
	annGatewayHostname = "kfdeploy.dev/gateway-hostname"
	annGatewaySignIn   = "kfdeploy.dev/gateway-sign-in" // the gateway signs users in first
	annSignInNote      = "kfdeploy.dev/gateway-sign-in-note"
	annRoutes          = "kfdeploy.dev/routes"
)

// Route is one Mapping of the gateway as its component describes it.
type Route struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	SignIn string `json:"signIn"`
	Access string `json:"access"`
	UI     string `json:"ui,omitempty"`
	// Allowed is who passes a gateway sign-in: "admins" (its admin group) or "signed-in".
	Allowed string `json:"allowed,omitempty"`
}

// UIURL is where one UI of the app is reached.
type UIURL struct {
	UI     string `json:"ui"`
	URL    string `json:"url"`
	SignIn string `json:"signIn"`
	Access string `json:"access"`
}

// URLs are the addresses of the app's UIs through its gateway.
type URLs struct {
	// Base is the gateway's address the UIs' URLs start with, e.g. https://192.0.2.10.
	Base string `json:"base"`
	// Others are further addresses of the gateway (other nodes, external IPs).
	Others []string `json:"others,omitempty"`
	// PortForward, when set, is the command that makes Base reachable: the gateway has no
	// address outside the cluster.
	PortForward string  `json:"portForward,omitempty"`
	UIs         []UIURL `json:"uis"`
	// SignInNote says who signs in at the gateway and how, when it signs users in.
	SignInNote string `json:"signInNote,omitempty"`
}

// maxOtherAddresses bounds the list of further gateway addresses (one per node otherwise).
const maxOtherAddresses = 4

// appURLs reads the app's Services and the nodes and computes the URLs; nil when the app has no
// gateway. The Services come from the snapshot when it read them whole and the run wrote none
// (fresh says so); the nodes come from the snapshot.
func appURLs(ctx context.Context, snap *snapshot.Snapshot, set inventory.ApplySet, fresh bool) (*URLs, error) {
	svcs, err := appServices(ctx, snap, set, fresh)
	if err != nil {
		return nil, err
	}
	var nodes []corev1.Node
	if gw := gatewayService(svcs); gw != nil && gw.Spec.Type != corev1.ServiceTypeClusterIP {
		list, err := snap.Nodes(ctx)
		switch {
		case apierrors.IsForbidden(err):
			// Users who may not list nodes still get the URLs by name, address or port-forward.
		case err != nil:
			return nil, fmt.Errorf("list nodes for the gateway's URLs: %w", err)
		default:
			nodes = list
		}
	}
	return ComputeURLs(svcs, nodes)
}

// appServices are the Services labelled as the app's in its namespace.
func appServices(ctx context.Context, snap *snapshot.Snapshot, set inventory.ApplySet, fresh bool) ([]corev1.Service, error) {
	var out []corev1.Service
	if cached, ok := snap.CachedList(schema.GroupResource{Resource: "services"}, set.Namespace); ok && fresh {
		for _, name := range slices.Sorted(maps.Keys(cached)) {
			o := cached[name]
			if o.Meta.Labels[inventory.LabelApp] != set.App {
				continue
			}
			var svc corev1.Service
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &svc); err != nil {
				return nil, fmt.Errorf("read Service %s/%s: %w", set.Namespace, name, err)
			}
			out = append(out, svc)
		}
		return out, nil
	}
	svcs, err := snap.Client().Typed.CoreV1().Services(set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: inventory.LabelApp + "=" + set.App})
	if err != nil {
		return nil, fmt.Errorf("list the app's Services for its URLs: %w", err)
	}
	return svcs.Items, nil
}

func gatewayService(svcs []corev1.Service) *corev1.Service {
	for i := range svcs {
		if _, ok := svcs[i].Annotations[annGatewayScheme]; ok {
			return &svcs[i]
		}
	}
	return nil
}

// ComputeURLs derives the UIs' URLs from the gateway Service (scheme, type, ports, node port,
// external IPs, load-balancer address, host name), the routes on the Services, and, for a node
// port, the nodes' addresses. It returns nil when no Service is the gateway.
func ComputeURLs(svcs []corev1.Service, nodes []corev1.Node) (*URLs, error) {
	gw := gatewayService(svcs)
	if gw == nil {
		return nil, nil
	}
	scheme := gw.Annotations[annGatewayScheme]
	var port, nodePort int32
	for _, p := range gw.Spec.Ports {
		if p.Name == scheme {
			port, nodePort = p.Port, p.NodePort
		}
	}
	if port == 0 {
		return nil, fmt.Errorf("gateway Service %s has no port named %s", gw.Name, scheme)
	}
	type addr struct {
		host string
		port int32
	}
	var addrs []addr
	byNode := gw.Spec.Type == corev1.ServiceTypeNodePort || gw.Spec.Type == corev1.ServiceTypeLoadBalancer
	var lb []string
	for _, in := range gw.Status.LoadBalancer.Ingress {
		if in.Hostname != "" {
			lb = append(lb, in.Hostname)
		} else if in.IP != "" {
			lb = append(lb, in.IP)
		}
	}
	// The host name first: it is what users were told, and the certificate's first name.
	if h := gw.Annotations[annGatewayHostname]; h != "" {
		if len(lb)+len(gw.Spec.ExternalIPs) == 0 && byNode && nodePort != 0 {
			addrs = append(addrs, addr{h, nodePort})
		} else {
			addrs = append(addrs, addr{h, port})
		}
	}
	for _, h := range lb {
		addrs = append(addrs, addr{h, port})
	}
	for _, h := range gw.Spec.ExternalIPs {
		addrs = append(addrs, addr{h, port})
	}
	if byNode && nodePort != 0 {
		for _, h := range addressesOf(nodes, corev1.NodeExternalIP) {
			addrs = append(addrs, addr{h, nodePort})
		}
		for _, h := range addressesOf(nodes, corev1.NodeInternalIP) {
			addrs = append(addrs, addr{h, nodePort})
		}
	}
	u := &URLs{}
	if len(addrs) == 0 {
		local := int32(8443)
		if scheme == "http" {
			local = 8080
		}
		addrs = append(addrs, addr{"localhost", local})
		u.PortForward = fmt.Sprintf("kubectl -n %s port-forward svc/%s %d:%d", gw.Namespace, gw.Name, local, port)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		b := baseURL(scheme, a.host, a.port)
		if seen[b] {
			continue
		}
		seen[b] = true
		if u.Base == "" {
			u.Base = b
		} else if len(u.Others) < maxOtherAddresses {
			u.Others = append(u.Others, b)
		}
	}
	routes, err := RoutesOf(svcs)
	if err != nil {
		return nil, err
	}
	_, gatewaySignIn := gw.Annotations[annGatewaySignIn]
	u.SignInNote = gw.Annotations[annSignInNote]
	for _, r := range routes {
		if r.UI != "" {
			u.UIs = append(u.UIs, UIURL{UI: r.UI, URL: u.Base + r.Prefix, SignIn: signInOf(r, gatewaySignIn), Access: r.Access})
		}
	}
	return u, nil
}

// signInOf says what a user passes to reach a route: the UI's own sign-in, after the gateway's
// when the gateway signs users in ("gateway (admins), then kubernetes-token").
func signInOf(r Route, gatewaySignIn bool) string {
	if !gatewaySignIn {
		return r.SignIn
	}
	s := "gateway"
	if r.Allowed == "admins" {
		s += " (admins)"
	}
	if r.SignIn != "none" && r.SignIn != "gateway" && r.SignIn != "" {
		s += ", then " + r.SignIn
	}
	return s
}

// RoutesOf reads the kfdeploy.dev/routes annotations of Services, sorted by prefix.
func RoutesOf(svcs []corev1.Service) ([]Route, error) {
	var out []Route
	for _, s := range svcs {
		a, ok := s.Annotations[annRoutes]
		if !ok {
			continue
		}
		var m map[string]Route
		if err := json.Unmarshal([]byte(a), &m); err != nil {
			return nil, fmt.Errorf("service %s/%s: annotation %s: %w", s.Namespace, s.Name, annRoutes, err)
		}
		for name, r := range m {
			r.Name = name
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

// baseURL joins scheme, host and port, leaving out the scheme's default port.
func baseURL(scheme, host string, port int32) string {
	if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(port)))
}
