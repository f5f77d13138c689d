package harness

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func testResolver() *resolver {
	kube := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"mode": "fast", "config.yaml": "a: 1\n"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Data: map[string][]byte{"password": []byte("s3cret"), "user": []byte("root")}},
	)
	return &resolver{
		kube: kube,
		ca:   []byte("CA"),
		tokens: func(_ context.Context, aud string, secs int64) (string, error) {
			return "token-for-" + aud, nil
		},
		pod: podInfo{name: "ctl-harness", namespace: "ns", uid: "u-1", serviceAccount: "ctl", nodeName: "harness",
			labels: map[string]string{"app": "ctl"}, annotations: map[string]string{"a": "b"}},
	}
}

func TestResolveEnv(t *testing.T) {
	r := testResolver()
	opt := true
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}, Prefix: "CFG_"},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Optional: &opt}},
		},
		Env: []corev1.EnvVar{
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "nope", Optional: &opt}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "ADDR", Value: "$(IP):8443/$(POD)/$(UNDEFINED)"},
			{Name: "CFG_mode", Value: "override"},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}},
	}
	got, err := r.env(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"CFG_config.yaml", "a: 1\n"}, {"CFG_mode", "override"},
		{"POD", "ctl-harness"}, {"NS", "ns"}, {"IP", "127.0.0.1"}, {"APP", "ctl"},
		{"PW", "s3cret"}, {"MODE", "fast"}, {"MEM", "128"},
		{"ADDR", "127.0.0.1:8443/ctl-harness/$(UNDEFINED)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env:\n got %v\nwant %v", got, want)
	}

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "absent"}}}}
	if _, err := r.env(context.Background(), c); err == nil || !strings.Contains(err.Error(), `no key "absent"`) {
		t.Errorf("a missing required secret key: err %v, want one naming the key", err)
	}
}

func TestMaterialise(t *testing.T) {
	r := testResolver()
	dir := t.TempDir()
	mode := int32(0o640)
	secs := int64(600)
	vols := []corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db", Items: []corev1.KeyToPath{{Key: "user", Path: "sub/u", Mode: &mode}}}}},
		{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", ExpirationSeconds: &secs, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	for _, v := range vols {
		if ok, err := r.materialise(context.Background(), &corev1.Container{}, v, filepath.Join(dir, v.Name)); err != nil || !ok {
			t.Fatalf("materialise %s: %v, %v", v.Name, ok, err)
		}
	}
	for path, want := range map[string]string{
		"cfg/mode": "fast", "cfg/config.yaml": "a: 1\n", "sec/sub/u": "root",
		"tok/token": "token-for-vault", "tok/ca.crt": "CA", "tok/namespace": "ns",
	} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", path, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sec", "password")); err == nil {
		t.Error("secret volume with items wrote a key that is not listed")
	}
	hp := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}
	if ok, err := r.materialise(context.Background(), &corev1.Container{}, hp, filepath.Join(dir, "data")); err != nil || ok {
		t.Errorf("hostPath volume: ok %v, err %v; want an empty stand-in (false, nil)", ok, err)
	}
}

func TestRewritePaths(t *testing.T) {
	mounts := []bind{{src: "/w/volumes/cfg", dst: "/etc/app"}, {src: "/w/volumes/certs", dst: "/etc/app/certs"}, {src: "/w/sa", dst: ServiceAccountDir}}
	for _, c := range []struct{ in, want string }{
		{"/etc/app/config.yaml", "/w/volumes/cfg/config.yaml"},
		{"--config=/etc/app/config.yaml", "--config=/w/volumes/cfg/config.yaml"},
		{"--cert-dir=/etc/app/certs", "--cert-dir=/w/volumes/certs"},
		{"/etc/app/certs/tls.crt", "/w/volumes/certs/tls.crt"},
		{"/etc/application", "/etc/application"},
		{ServiceAccountDir + "/namespace", "/w/sa/namespace"},
		{"--x=y=/etc/app", "--x=y=/etc/app"},
		{"plain", "plain"},
	} {
		if got := rewritePaths(c.in, mounts); got != c.want {
			t.Errorf("rewritePaths(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	args := []string{"--port=9443", "--metrics", ":8080", "-v"}
	if got, want := SetFlag(args, "--port", "9555"), []string{"--port=9555", "--metrics", ":8080", "-v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SetFlag --port: %v, want %v", got, want)
	}
	if got, want := SetFlag(args, "--metrics", ":0"), []string{"--port=9443", "--metrics", ":0", "-v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SetFlag --metrics: %v, want %v", got, want)
	}
	if got, want := SetFlag(args, "--new", "1"), append(append([]string(nil), args...), "--new=1"); !reflect.DeepEqual(got, want) {
		t.Errorf("SetFlag --new: %v, want %v", got, want)
	}
	if got, want := DropFlag(args, "--metrics"), []string{"--port=9443", "-v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DropFlag --metrics: %v, want %v", got, want)
	}
	if args[0] != "--port=9443" {
		t.Error("SetFlag changed its input")
	}
}

func TestHostsFile(t *testing.T) {
	svcs := []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "b"}, Spec: corev1.ServiceSpec{ClusterIP: "127.96.0.20"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "a"}, Spec: corev1.ServiceSpec{ClusterIP: "127.96.0.10"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "a"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}},
	}
	got := hostsFile("127.0.0.1 localhost\n\n", svcs)
	want := "127.0.0.1 localhost\n# Services of the test cluster (kfdeploy test harness)\n" +
		"127.96.0.10 db.a.svc.cluster.local db.a.svc db.a db\n" +
		"127.96.0.20 web.b.svc.cluster.local web.b.svc web.b web\n"
	if got != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", got, want)
	}
}

func TestLoopbackServer(t *testing.T) {
	if s, err := loopbackServer("https://127.0.0.1:6443/"); err != nil || s != "https://127.0.0.1:6443" {
		t.Errorf("loopback server: %q, %v", s, err)
	}
	for _, bad := range []string{"http://127.0.0.1:8080", "https://10.0.0.1:6443", "https://example.com:443"} {
		if _, err := loopbackServer(bad); err == nil {
			t.Errorf("%s accepted; want an error (https on loopback only)", bad)
		}
	}
}
