package harness

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podInfo is what the downward API and field references of the simulated pod
// report: the pod does not exist, so its name and uid are made up.
type podInfo struct {
	name, namespace, uid, serviceAccount, nodeName string
	labels, annotations                            map[string]string
}

// resolver reads the ConfigMaps and Secrets a container refers to.
type resolver struct {
	kube kubernetes.Interface
	pod  podInfo
	// tokens issues ServiceAccount tokens for projected volumes.
	tokens func(ctx context.Context, audience string, seconds int64) (string, error)
	ca     []byte

	// serviceEnv holds the Service link variables (serviceLinkEnv).
	serviceEnv map[string]string

	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func (r *resolver) configMap(ctx context.Context, name string, optional bool) (*corev1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := r.kube.CoreV1().ConfigMaps(r.pod.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional && isNotFound(err) {
			cm = nil
		} else {
			return nil, fmt.Errorf("read configmap %s/%s: %w", r.pod.namespace, name, err)
		}
	}
	if r.configMaps == nil {
		r.configMaps = map[string]*corev1.ConfigMap{}
	}
	r.configMaps[name] = cm
	return cm, nil
}

func (r *resolver) secret(ctx context.Context, name string, optional bool) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s, err := r.kube.CoreV1().Secrets(r.pod.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional && isNotFound(err) {
			s = nil
		} else {
			return nil, fmt.Errorf("read secret %s/%s: %w", r.pod.namespace, name, err)
		}
	}
	if r.secrets == nil {
		r.secrets = map[string]*corev1.Secret{}
	}
	r.secrets[name] = s
	return s, nil
}

// env resolves a container's envFrom and env, in the kubelet's order: envFrom
// first, then env entries, each expanded with the ones defined before it.
// It returns the variables in definition order.
func (r *resolver) env(ctx context.Context, c *corev1.Container) ([][2]string, error) {
	var out [][2]string
	index := map[string]int{}
	set := func(k, v string) {
		if i, ok := index[k]; ok {
			out[i][1] = v
			return
		}
		index[k] = len(out)
		out = append(out, [2]string{k, v})
	}
	lookup := func(k string) (string, bool) {
		if i, ok := index[k]; ok {
			return out[i][1], true
		}
		return "", false
	}
	// Service links first: the container's own variables override them.
	for _, k := range slices.Sorted(maps.Keys(r.serviceEnv)) {
		set(k, r.serviceEnv[k])
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.configMap(ctx, from.ConfigMapRef.Name, isTrue(from.ConfigMapRef.Optional))
			if err != nil {
				return nil, fmt.Errorf("envFrom: %w", err)
			}
			if cm != nil {
				data = cm.Data
			}
		case from.SecretRef != nil:
			s, err := r.secret(ctx, from.SecretRef.Name, isTrue(from.SecretRef.Optional))
			if err != nil {
				return nil, fmt.Errorf("envFrom: %w", err)
			}
			if s != nil {
				data = map[string]string{}
				for k, v := range s.Data {
					data[k] = string(v)
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		v, ok, err := r.valueFrom(ctx, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	return out, nil
}

// valueFrom resolves one env valueFrom; ok is false for a missing optional key.
func (r *resolver) valueFrom(ctx context.Context, c *corev1.Container, from *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case from.FieldRef != nil:
		v, err := r.field(from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := resourceField(c, from.ResourceFieldRef)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := r.configMap(ctx, ref.Name, isTrue(ref.Optional))
		if err != nil {
			return "", false, err
		}
		if cm != nil {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, true, nil
			}
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("configmap %s/%s has no key %q", r.pod.namespace, ref.Name, ref.Key)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := r.secret(ctx, ref.Name, isTrue(ref.Optional))
		if err != nil {
			return "", false, err
		}
		if s != nil {
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), true, nil
			}
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("secret %s/%s has no key %q", r.pod.namespace, ref.Name, ref.Key)
	}
	return "", false, fmt.Errorf("unsupported valueFrom (only fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef)")
}

// field resolves a downward-API field path of the simulated pod. The pod's IPs
// are the loopback address the process actually serves on.
func (r *resolver) field(path string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return r.pod.labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return r.pod.annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return r.pod.name, nil
	case "metadata.namespace":
		return r.pod.namespace, nil
	case "metadata.uid":
		return r.pod.uid, nil
	case "spec.serviceAccountName":
		return r.pod.serviceAccount, nil
	case "spec.nodeName":
		return r.pod.nodeName, nil
	case "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs":
		return "127.0.0.1", nil
	case "metadata.labels":
		return formatMap(r.pod.labels), nil
	case "metadata.annotations":
		return formatMap(r.pod.annotations), nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// resourceField resolves a resourceFieldRef as the kubelet does: the value
// divided by the divisor (default 1), rounded up.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	switch ref.Resource {
	case "limits.cpu":
		q = c.Resources.Limits[corev1.ResourceCPU]
	case "limits.memory":
		q = c.Resources.Limits[corev1.ResourceMemory]
	case "limits.ephemeral-storage":
		q = c.Resources.Limits[corev1.ResourceEphemeralStorage]
	case "requests.cpu":
		q = c.Resources.Requests[corev1.ResourceCPU]
	case "requests.memory":
		q = c.Resources.Requests[corev1.ResourceMemory]
	case "requests.ephemeral-storage":
		q = c.Resources.Requests[corev1.ResourceEphemeralStorage]
	default:
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	if q.IsZero() && strings.HasPrefix(ref.Resource, "limits.") {
		// No limit: the kubelet reports the node's allocatable; say so plainly.
		return "", fmt.Errorf("resourceFieldRef %q: the container sets no limit (the node's allocatable has no meaning here)", ref.Resource)
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(div.MilliValue())))), nil
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.Value()) / float64(div.Value())))), nil
}

func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// materialise writes a volume's files into dir (created), as the kubelet would
// lay them out at the mount path. emptyDir and unsupported kinds give an empty
// directory; ok is false for a volume kind the harness cannot provide.
func (r *resolver) materialise(ctx context.Context, c *corev1.Container, v corev1.Volume, dir string) (ok bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	files := map[string][]byte{}
	modes := map[string]os.FileMode{}
	addItems := func(data map[string][]byte, items []corev1.KeyToPath, def *int32, optional bool, what string) error {
		if len(items) == 0 {
			for k, val := range data {
				files[k] = val
				modes[k] = fileMode(nil, def)
			}
			return nil
		}
		for _, it := range items {
			val, ok := data[it.Key]
			if !ok {
				if optional {
					continue
				}
				return fmt.Errorf("%s has no key %q", what, it.Key)
			}
			files[it.Path] = val
			modes[it.Path] = fileMode(it.Mode, def)
		}
		return nil
	}
	cmData := func(cm *corev1.ConfigMap) map[string][]byte {
		out := map[string][]byte{}
		if cm == nil {
			return out
		}
		for k, val := range cm.Data {
			out[k] = []byte(val)
		}
		for k, val := range cm.BinaryData {
			out[k] = val
		}
		return out
	}
	switch {
	case v.EmptyDir != nil:
		return true, nil
	case v.ConfigMap != nil:
		s := v.ConfigMap
		cm, err := r.configMap(ctx, s.Name, isTrue(s.Optional))
		if err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := addItems(cmData(cm), s.Items, s.DefaultMode, isTrue(s.Optional), "configmap "+s.Name); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	case v.Secret != nil:
		s := v.Secret
		sec, err := r.secret(ctx, s.SecretName, isTrue(s.Optional))
		if err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		var data map[string][]byte
		if sec != nil {
			data = sec.Data
		}
		if err := addItems(data, s.Items, s.DefaultMode, isTrue(s.Optional), "secret "+s.SecretName); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	case v.DownwardAPI != nil:
		if err := r.downward(c, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, files, modes); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	case v.Projected != nil:
		def := v.Projected.DefaultMode
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				s := src.ConfigMap
				var data map[string][]byte
				if s.Name == "kube-root-ca.crt" {
					// Published by the controller manager; the same CA the
					// harness's kubeconfig carries.
					data = map[string][]byte{"ca.crt": r.ca}
				} else {
					cm, err := r.configMap(ctx, s.Name, isTrue(s.Optional))
					if err != nil {
						return false, fmt.Errorf("volume %s: %w", v.Name, err)
					}
					data = cmData(cm)
				}
				if err := addItems(data, s.Items, def, isTrue(s.Optional), "configmap "+s.Name); err != nil {
					return false, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			case src.Secret != nil:
				s := src.Secret
				sec, err := r.secret(ctx, s.Name, isTrue(s.Optional))
				if err != nil {
					return false, fmt.Errorf("volume %s: %w", v.Name, err)
				}
				var data map[string][]byte
				if sec != nil {
					data = sec.Data
				}
				if err := addItems(data, s.Items, def, isTrue(s.Optional), "secret "+s.Name); err != nil {
					return false, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			case src.DownwardAPI != nil:
				if err := r.downward(c, src.DownwardAPI.Items, def, files, modes); err != nil {
					return false, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			case src.ServiceAccountToken != nil:
				s := src.ServiceAccountToken
				secs := int64(3600)
				if s.ExpirationSeconds != nil {
					secs = *s.ExpirationSeconds
				}
				tok, err := r.tokens(ctx, s.Audience, secs)
				if err != nil {
					return false, fmt.Errorf("volume %s: %w", v.Name, err)
				}
				files[s.Path] = []byte(tok)
				modes[s.Path] = fileMode(nil, def)
			default:
				return false, fmt.Errorf("volume %s: unsupported projected source", v.Name)
			}
		}
	default:
		// hostPath, PVCs, CSI...: an empty directory stands in; the caller says so.
		return false, nil
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		target := filepath.Join(dir, filepath.Clean("/"+p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		// 0600 at most for the owner's sake would break programs that run as
		// another user; the harness runs everything as the test's user, so
		// the volume's mode only needs the owner bits.
		if err := os.WriteFile(target, files[p], modes[p]|0o600); err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	return true, nil
}

func (r *resolver) downward(c *corev1.Container, items []corev1.DownwardAPIVolumeFile, def *int32, files map[string][]byte, modes map[string]os.FileMode) error {
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = r.field(it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = resourceField(c, it.ResourceFieldRef)
		}
		if err != nil {
			return fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		files[it.Path] = []byte(val)
		modes[it.Path] = fileMode(it.Mode, def)
	}
	return nil
}

func fileMode(mode, def *int32) os.FileMode {
	switch {
	case mode != nil:
		return os.FileMode(*mode) & 0o777
	case def != nil:
		return os.FileMode(*def) & 0o777
	}
	return 0o644
}

func isTrue(b *bool) bool { return b != nil && *b }
