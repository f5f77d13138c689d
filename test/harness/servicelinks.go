package harness

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// serviceLinkEnv is the environment the kubelet derives from the Services of
// the pod's namespace (enableServiceLinks, true by default): NAME_SERVICE_HOST,
// NAME_SERVICE_PORT[_PORTNAME] and the Docker-link style NAME_PORT... variables.
// The kubernetes Service of the default namespace is left out: the program
// must reach the API server through its kubeconfig, not an in-cluster config.
func serviceLinkEnv(svcs []corev1.Service) map[string]string {
	env := map[string]string{}
	for _, s := range svcs {
		ip := net.ParseIP(s.Spec.ClusterIP)
		if ip == nil || len(s.Spec.Ports) == 0 || (s.Namespace == "default" && s.Name == "kubernetes") {
			continue
		}
		name := envName(s.Name)
		env[name+"_SERVICE_HOST"] = s.Spec.ClusterIP
		env[name+"_SERVICE_PORT"] = fmt.Sprint(s.Spec.Ports[0].Port)
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				env[name+"_SERVICE_PORT_"+envName(p.Name)] = fmt.Sprint(p.Port)
			}
		}
		first := s.Spec.Ports[0]
		env[name+"_PORT"] = fmt.Sprintf("%s://%s", protocol(first), net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(first.Port)))
		for _, p := range s.Spec.Ports {
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(protocol(p)))
			env[prefix] = fmt.Sprintf("%s://%s", protocol(p), net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(p.Port)))
			env[prefix+"_PROTO"] = protocol(p)
			env[prefix+"_PORT"] = fmt.Sprint(p.Port)
			env[prefix+"_ADDR"] = s.Spec.ClusterIP
		}
	}
	return env
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

func protocol(p corev1.ServicePort) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(string(p.Protocol))
}
