package harness

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

// TestForwardServices checks which Service ports get a forwarder to which
// local port: selector matches (and only those, or listed ones), named and
// numbered target ports, Program.Ports, and no forwarder where the process
// serves the ClusterIP port itself.
func TestForwardServices(t *testing.T) {
	// A free loopback address range for the fake ClusterIPs.
	base := "127.77.0."
	if l, err := net.Listen("tcp", base+"1:0"); err != nil {
		t.Skipf("cannot listen on %s1: %v", base, err)
	} else {
		l.Close()
	}
	svc := func(name, ip string, sel map[string]string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
			Spec: corev1.ServiceSpec{ClusterIP: ip, Selector: sel, Ports: ports}}
	}
	kube := fake.NewClientset(
		svc("webhook", base+"1", map[string]string{"app": "ctl"},
			corev1.ServicePort{Name: "https", Port: 18443, TargetPort: intstr.FromString("webhook")},
			corev1.ServicePort{Name: "metrics", Port: 18080, TargetPort: intstr.FromInt32(8080)}),
		svc("same-port", base+"2", map[string]string{"app": "ctl"}, corev1.ServicePort{Port: 16789, TargetPort: intstr.FromInt32(16789)}),
		svc("other-app", base+"3", map[string]string{"app": "other"}, corev1.ServicePort{Port: 18081, TargetPort: intstr.FromInt32(8081)}),
		svc("listed", base+"4", nil, corev1.ServicePort{Port: 18082, TargetPort: intstr.FromInt32(8082)}),
		svc("headless", "None", map[string]string{"app": "ctl"}, corev1.ServicePort{Port: 18083}),
	)
	var logs []string
	h := &Harness{kube: kube, forwards: map[string]*forwarder{},
		opts: Options{Logf: func(f string, a ...any) { logs = append(logs, f) }}}
	defer func() {
		for _, f := range h.forwards {
			f.Close()
		}
	}()
	proc := &Process{Name: "ctl", exited: make(chan struct{})}
	h.programs = []*running{{
		prog:     Program{Name: "ctl", Namespace: "ns", Container: "main"},
		proc:     proc,
		labels:   map[string]string{"app": "ctl", "tier": "x"},
		ports:    map[int32]int32{9443: 19443},
		named:    map[string]int32{"webhook": 9443},
		explicit: map[string]bool{"listed": true},
	}}
	if err := h.forwardServices(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for listen, f := range h.forwards {
		got[listen] = f.target
	}
	want := map[string]string{
		base + "1:18443": "127.0.0.1:19443", // named target port, moved by Program.Ports
		base + "1:18080": "127.0.0.1:8080",
		base + "4:18082": "127.0.0.1:8082", // listed: no selector needed
	}
	if len(got) != len(want) {
		t.Errorf("forwarders %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("forwarder %s → %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if !strings.Contains(strings.Join(logs, "\n"), "no forwarder") {
		t.Errorf("the same-port Service was not reported as served directly: %q", logs)
	}
	// A second pass (the resync loop) changes nothing.
	if err := h.forwardServices(context.Background()); err != nil || len(h.forwards) != len(want) {
		t.Errorf("second pass: %v, %d forwarders", err, len(h.forwards))
	}
}
