package images

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestUnderKeepsThePathBelowTheRegistry(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"docker.io/library/mysql:8", "registry.local/mirror/library/mysql:8"},
		{"mysql:8", "registry.local/mirror/library/mysql:8"},
		{"kubernetesui/dashboard-web:1.7.0", "registry.local/mirror/kubernetesui/dashboard-web:1.7.0"},
		{"quay.io/jupyterhub/k8s-hub:4.4.0", "registry.local/mirror/jupyterhub/k8s-hub:4.4.0"},
		{"ghcr.io/kubeflow/katib/katib-ui:v0.19.0", "registry.local/mirror/kubeflow/katib/katib-ui:v0.19.0"},
		{"localhost:5000/a/b:1", "registry.local/mirror/a/b:1"},
		{"quay.io/x/y@" + digest, "registry.local/mirror/x/y@" + digest},
		{"quay.io/x/y:1@" + digest, "registry.local/mirror/x/y:1@" + digest},
		{"quay.io/x/y", "registry.local/mirror/x/y"},
		// Already under the mirror: unchanged.
		{"registry.local/mirror/x/y:1", "registry.local/mirror/x/y:1"},
	} {
		got, err := Under("registry.local/mirror", tc.image)
		if err != nil || got != tc.want {
			t.Errorf("Under(%s) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
	if _, err := Under("registry.local", "Not/An:Image"); err == nil {
		t.Error("an invalid reference was rewritten")
	}
}

func TestParseMirror(t *testing.T) {
	for _, ok := range []string{"registry.local", "registry.local/", "registry.local:5000/a/b", "localhost:5000", "localhost", "10.0.0.5:5000/kf"} {
		if _, err := ParseMirror(ok); err != nil {
			t.Errorf("ParseMirror(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mirror", "mirror/path", "registry.local/x:1", "registry.local/a@" + digest, "https://registry.local"} {
		if m, err := ParseMirror(bad); err == nil {
			t.Errorf("ParseMirror(%q) = %q, want an error", bad, m)
		}
	}
}

func TestRewriteOverridesThenMirror(t *testing.T) {
	r, err := NewRewriter("registry.local", map[string]string{
		"mysql:8.0.40":                 "docker.io/library/mysql:8.4.3",
		"quay.io/jupyter/base:1":       "registry.local/custom/base:2",
		"quay.io/jupyter/unmirrored:1": "internal.example.com/team/notebook:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ image, want string }{
		// The override matches the image in any spelling, then the mirror applies to it.
		{"docker.io/library/mysql:8.0.40", "registry.local/library/mysql:8.4.3"},
		{"mysql:8.0.40", "registry.local/library/mysql:8.4.3"},
		// An override already under the mirror stays as it is.
		{"quay.io/jupyter/base:1", "registry.local/custom/base:2"},
		{"quay.io/jupyter/unmirrored:1", "registry.local/team/notebook:1"},
		{"busybox:1.37.0", "registry.local/library/busybox:1.37.0"},
	} {
		if got, err := r.Rewrite(tc.image); err != nil || got != tc.want {
			t.Errorf("Rewrite(%s) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
	// Overrides alone, no mirror.
	r, err = NewRewriter("", map[string]string{"mysql:8.0.40": "mysql:8.4.3"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Rewrite("docker.io/library/mysql:8.0.40"); got != "mysql:8.4.3" {
		t.Errorf("override without mirror: %q", got)
	}
	if got, _ := r.Rewrite("quay.io/a/b:1"); got != "quay.io/a/b:1" {
		t.Errorf("an image without override changed: %q", got)
	}
	var none *Rewriter
	if none.Enabled() {
		t.Error("a nil rewriter is enabled")
	}
}

func TestNewRewriterRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		mirror    string
		overrides map[string]string
		want      string
	}{
		"mirror":      {mirror: "mirror", want: "is not a registry prefix"},
		"bad source":  {overrides: map[string]string{"Bad:Image": "a:1"}, want: `"Bad:Image" is not a valid image reference`},
		"bad target":  {overrides: map[string]string{"a:1": "b::1"}, want: `"b::1" is not a valid image reference`},
		"twice":       {overrides: map[string]string{"a:1": "b:1", "docker.io/library/a:1": "c:1"}, want: "overridden twice"},
		"chain":       {overrides: map[string]string{"a:1": "b:1", "b:1": "c:1"}, want: "which is overridden too"},
		"empty value": {overrides: map[string]string{"a:1": ""}, want: "not a valid image reference"},
	} {
		_, err := NewRewriter(tc.mirror, tc.overrides)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func TestPlanFindsCollisions(t *testing.T) {
	r, err := NewRewriter("registry.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same image in two spellings is one image, not a collision.
	table, err := r.Plan([]string{"mysql:8", "docker.io/library/mysql:8", "quay.io/a/b:1"})
	if err != nil {
		t.Fatal(err)
	}
	if table["mysql:8"] != "registry.local/library/mysql:8" || table["docker.io/library/mysql:8"] != "registry.local/library/mysql:8" || len(table) != 3 {
		t.Errorf("plan %v", table)
	}
	_, err = r.Plan([]string{"quay.io/jupyter/x:1", "docker.io/jupyter/x:1", "ghcr.io/other/y:1"})
	var c *CollisionError
	if !errors.As(err, &c) || c.Into != "registry.local/jupyter/x:1" ||
		!strings.Contains(err.Error(), "docker.io/jupyter/x:1") || !strings.Contains(err.Error(), "quay.io/jupyter/x:1") {
		t.Errorf("collision: %v", err)
	}
	// An override resolves it.
	r, _ = NewRewriter("registry.local", map[string]string{"docker.io/jupyter/x:1": "registry.local/dockerhub/jupyter/x:1"})
	if _, err := r.Plan([]string{"quay.io/jupyter/x:1", "docker.io/jupyter/x:1"}); err != nil {
		t.Errorf("with an override: %v", err)
	}
}

func TestPodImagesFindsEveryContainerList(t *testing.T) {
	obj := map[string]any{
		"kind": "Experiment",
		"spec": map[string]any{"trialTemplate": map[string]any{"trialSpec": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"initContainers":      []any{map[string]any{"name": "init", "image": "a:1"}},
			"containers":          []any{map[string]any{"name": "main", "image": "b:1"}, map[string]any{"name": "no-image"}},
			"ephemeralContainers": []any{map[string]any{"name": "debug", "image": "c:1"}},
		}}}}}},
		// A CRD schema names containers too, but as a schema, not a list.
		"schema": map[string]any{"properties": map[string]any{"containers": map[string]any{"type": "array"}}},
	}
	var seen []string
	err := PodImages(obj, func(c Container) (string, error) {
		seen = append(seen, c.Field+"/"+c.Name+"="+c.Image)
		return "m/" + c.Image, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, " ") != "initContainers/init=a:1 containers/main=b:1 ephemeralContainers/debug=c:1" {
		t.Errorf("visited %v", seen)
	}
	if err := RewritePodImages(obj, map[string]string{"m/a:1": "x"}); err == nil || !strings.Contains(err.Error(), "m/b:1 has no rewrite") {
		t.Errorf("missing rewrite: %v", err)
	}
}

func TestRewriteStrings(t *testing.T) {
	in := map[string]any{"a": "x:1", "b": []any{"x:1", "x:10", 3.0}, "c": map[string]any{"d": "y"}}
	out := RewriteStrings(in, map[string]string{"x:1": "m/x:1"}).(map[string]any)
	if out["a"] != "m/x:1" || out["b"].([]any)[0] != "m/x:1" || out["b"].([]any)[1] != "x:10" || out["c"].(map[string]any)["d"] != "y" {
		t.Errorf("rewrote %v", out)
	}
	if in["a"] != "x:1" {
		t.Error("the input was changed")
	}
}

func TestSkopeoScript(t *testing.T) {
	copies, err := Copies("registry.local/kf", []string{"mysql:8", "docker.io/library/mysql:8", "quay.io/x/y:1@" + digest, "registry.local/kf/already:1"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSkopeoScript(&buf, []string{"copies"}, nil, copies); err != nil {
		t.Fatal(err)
	}
	want := "#!/bin/sh\n# copies\nset -eu\n" +
		"skopeo copy --all docker://docker.io/library/mysql:8 docker://registry.local/kf/library/mysql:8\n" +
		"skopeo copy --all --preserve-digests docker://quay.io/x/y@" + digest + " docker://registry.local/kf/x/y@" + digest + "\n"
	if buf.String() != want {
		t.Errorf("script:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestAddPullSecretsToEveryPodSpec(t *testing.T) {
	obj := map[string]any{
		"kind": "TFJob",
		"spec": map[string]any{"tfReplicaSpecs": map[string]any{
			"Worker": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers":       []any{map[string]any{"name": "w", "image": "busybox"}},
				"imagePullSecrets": []any{map[string]any{"name": "own"}, map[string]any{"name": "b"}},
			}}},
			"PS": map[string]any{"template": map[string]any{"spec": map[string]any{
				"initContainers": []any{map[string]any{"name": "i", "image": "busybox"}},
			}}},
		}},
		"status": map[string]any{"containers": []any{"not a container"}},
	}
	n := 0
	PodSpecs(obj, func(spec map[string]any) {
		n++
		AddPullSecrets(spec, []string{"a", "b"})
	})
	if n != 2 {
		t.Fatalf("found %d pod specs, want 2", n)
	}
	names := func(role string) []string {
		spec := obj["spec"].(map[string]any)["tfReplicaSpecs"].(map[string]any)[role].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		var out []string
		for _, e := range spec["imagePullSecrets"].([]any) {
			out = append(out, e.(map[string]any)["name"].(string))
		}
		return out
	}
	if got := strings.Join(names("Worker"), ","); got != "own,b,a" {
		t.Errorf("worker: %s, want own,b,a (its own first, none twice)", got)
	}
	if got := strings.Join(names("PS"), ","); got != "a,b" {
		t.Errorf("ps: %s", got)
	}
	if _, ok := obj["status"].(map[string]any)["imagePullSecrets"]; ok {
		t.Error("a list of strings was taken for a pod spec")
	}
}

func TestLoginCheck(t *testing.T) {
	host, err := MirrorHost("registry.example.com:5000/kf/mirror")
	if err != nil || host != "registry.example.com:5000" {
		t.Fatalf("host %q, %v", host, err)
	}
	var buf strings.Builder
	if err := WriteSkopeoScript(&buf, []string{"h"}, []string{LoginCheck(host, "why")}, []Copy{{From: "docker.io/library/a:1", To: host + "/kf/mirror/library/a:1"}}); err != nil {
		t.Fatal(err)
	}
	script := buf.String()
	check := strings.Index(script, "skopeo login --get-login registry.example.com:5000 ")
	if check < 0 || check > strings.Index(script, "skopeo copy") || !strings.Contains(script, "exit 1") {
		t.Errorf("script does not check the login before copying:\n%s", script)
	}
}
