package app

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func gatewaySvc(typ corev1.ServiceType, ann map[string]string, ports ...corev1.ServicePort) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ambassador", Namespace: "ml", Annotations: ann},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports},
	}
}

func node(name string, addrs ...corev1.NodeAddress) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestComputeURLs(t *testing.T) {
	https := map[string]string{annGatewayScheme: "https"}
	tlsPorts := []corev1.ServicePort{{Name: "https", Port: 443, NodePort: 31443}, {Name: "http", Port: 80, NodePort: 31080}}
	routes := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ui", Annotations: map[string]string{
		annRoutes: `{"hub":{"prefix":"/hub/","signIn":"password","access":"read-write","ui":"JupyterHub"},"user":{"prefix":"/user/","signIn":"password","access":"read-write"},"home":{"prefix":"/","signIn":"none","access":"read-only","ui":"Central dashboard"}}`,
	}}}
	nodes := []corev1.Node{
		node("b", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}),
		node("a", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.7"}),
	}
	lb := gatewaySvc(corev1.ServiceTypeLoadBalancer, https, tlsPorts...)
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.4"}}
	ext := gatewaySvc(corev1.ServiceTypeClusterIP, https, corev1.ServicePort{Name: "https", Port: 443})
	ext.Spec.ExternalIPs = []string{"192.0.2.10", "2001:db8::1"}

	for _, c := range []struct {
		name        string
		gw          corev1.Service
		base        string
		others      []string
		portForward bool
	}{
		{"node port", gatewaySvc(corev1.ServiceTypeNodePort, https, tlsPorts...), "https://203.0.113.7:31443", []string{"https://10.0.0.1:31443", "https://10.0.0.2:31443"}, false},
		{"host name on node port", gatewaySvc(corev1.ServiceTypeNodePort, map[string]string{annGatewayScheme: "https", annGatewayHostname: "kf.example.com"}, tlsPorts...), "https://kf.example.com:31443", []string{"https://203.0.113.7:31443", "https://10.0.0.1:31443", "https://10.0.0.2:31443"}, false},
		{"load balancer", lb, "https://198.51.100.4", []string{"https://203.0.113.7:31443", "https://10.0.0.1:31443", "https://10.0.0.2:31443"}, false},
		{"external IPs", ext, "https://192.0.2.10", []string{"https://[2001:db8::1]"}, false},
		{"cluster only", gatewaySvc(corev1.ServiceTypeClusterIP, https, corev1.ServicePort{Name: "https", Port: 443}), "https://localhost:8443", nil, true},
		{"plain HTTP", gatewaySvc(corev1.ServiceTypeNodePort, map[string]string{annGatewayScheme: "http"}, corev1.ServicePort{Name: "http", Port: 80, NodePort: 30080}), "http://203.0.113.7:30080", []string{"http://10.0.0.1:30080", "http://10.0.0.2:30080"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := ComputeURLs([]corev1.Service{routes, c.gw}, nodes)
			if err != nil {
				t.Fatal(err)
			}
			if u.Base != c.base || !slices.Equal(u.Others, c.others) || (u.PortForward != "") != c.portForward {
				t.Errorf("base %s, others %v, port-forward %q; want %s, %v, port-forward %v", u.Base, u.Others, u.PortForward, c.base, c.others, c.portForward)
			}
			want := []UIURL{
				{UI: "Central dashboard", URL: c.base + "/", SignIn: "none", Access: "read-only"},
				{UI: "JupyterHub", URL: c.base + "/hub/", SignIn: "password", Access: "read-write"},
			}
			if !slices.Equal(u.UIs, want) {
				t.Errorf("UIs %+v, want %+v (entry points only, by prefix)", u.UIs, want)
			}
		})
	}
	if u, err := ComputeURLs([]corev1.Service{routes}, nodes); u != nil || err != nil {
		t.Errorf("without a gateway: %v, %v; want nothing", u, err)
	}
}

// Behind a gateway that signs users in, each URL names that sign-in, who passes it, and the UI's
// own sign-in after it.
func TestComputeURLsGatewaySignIn(t *testing.T) {
	routes := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ui", Annotations: map[string]string{
		annRoutes: `{"hub":{"prefix":"/hub/","signIn":"gateway","access":"read-write","ui":"JupyterHub","allowed":"signed-in"},` +
			`"home":{"prefix":"/","signIn":"none","access":"read-only","ui":"Central dashboard","allowed":"signed-in"},` +
			`"argo":{"prefix":"/argo/","signIn":"kubernetes-token","access":"read-write","ui":"Argo","allowed":"admins"},` +
			`"katib":{"prefix":"/katib/","signIn":"none","access":"read-write","ui":"Katib","allowed":"admins"}}`,
	}}}
	note := "static users admin sign in with the passwords in secrets.yaml (gateway/htpasswd.password.NAME)"
	gw := gatewaySvc(corev1.ServiceTypeClusterIP, map[string]string{annGatewayScheme: "https", annGatewaySignIn: "oauth2-proxy", annSignInNote: note}, corev1.ServicePort{Name: "https", Port: 443})
	u, err := ComputeURLs([]corev1.Service{routes, gw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []UIURL{
		{UI: "Central dashboard", URL: u.Base + "/", SignIn: "gateway", Access: "read-only"},
		{UI: "Argo", URL: u.Base + "/argo/", SignIn: "gateway (admins), then kubernetes-token", Access: "read-write"},
		{UI: "JupyterHub", URL: u.Base + "/hub/", SignIn: "gateway", Access: "read-write"},
		{UI: "Katib", URL: u.Base + "/katib/", SignIn: "gateway (admins)", Access: "read-write"},
	}
	if !slices.Equal(u.UIs, want) {
		t.Errorf("UIs %+v,\nwant %+v", u.UIs, want)
	}
	if u.SignInNote != note {
		t.Errorf("sign-in note %q, want the gateway Service's %q", u.SignInNote, note)
	}
}
