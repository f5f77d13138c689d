package app

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/images"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
	"github.com/kfdeploy/kfdeploy/pkg/smoketest"
)

const mirror = "registry.local:5000/kf"

// fullPresetApp writes an app of the full preset (the NFS provisioner's required parameters
// set) with the given spec.images.
func fullPresetApp(t *testing.T, im *config.Images) (string, *config.App) {
	t.Helper()
	presets, err := Presets()
	if err != nil {
		t.Fatal(err)
	}
	var list []config.Component
	for _, name := range presets["full"] {
		c := config.Component{Name: name}
		if name == "nfs-provisioner" {
			c.Params = map[string]any{"server": "nfs.example.com", "path": "/srv/nfs"}
		}
		list = append(list, c)
	}
	a := config.New("demo", config.PlatformNone, "kubeflow", list)
	a.Spec.Images = im
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, config.FileName), string(data))
	loaded, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, loaded
}

// imageToken finds what may be an image reference inside any text (flags, YAML, JSON, Python).
var imageToken = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9._/:@-]*`)

// explicitImages returns the image references in s that name a registry host explicitly
// (host/path with a tag or digest), the form every pinned image of the library has.
func explicitImages(s string) []string {
	var out []string
	for _, tok := range imageToken.FindAllString(s, -1) {
		tok = strings.TrimRight(tok, ".,:")
		host, _, ok := strings.Cut(tok, "/")
		if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
			continue
		}
		named, err := reference.ParseNormalizedNamed(tok)
		if err != nil || reference.Domain(named) != host {
			continue
		}
		_, tagged := named.(reference.Tagged)
		_, digested := named.(reference.Digested)
		if tagged || digested {
			out = append(out, tok)
		}
	}
	return out
}

func walkAllStrings(v any, path string, f func(path, s string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			walkAllStrings(e, path+"."+k, f)
		}
	case []any:
		for _, e := range t {
			walkAllStrings(e, path+"[]", f)
		}
	case string:
		f(path, t)
	}
}

// TestFullPresetUnderTheMirror renders the full preset with a mirror and finds every image
// under it: each container, init container and ephemeral container image of every object, and
// every string of every object (ConfigMaps, args, annotations) that names an image.
func TestFullPresetUnderTheMirror(t *testing.T) {
	dir, a := fullPresetApp(t, &config.Images{Registry: mirror})
	store, err := secrets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := renderImages(context.Background(), a, dir, store, true)
	if err != nil {
		t.Fatal(err)
	}
	podImages, configImages := 0, 0
	for component, objs := range ra.objs {
		for _, o := range objs {
			id := manifest.IDOf(o)
			_ = images.PodImages(o.Object, func(c images.Container) (string, error) {
				podImages++
				if !strings.HasPrefix(c.Image, mirror+"/") {
					t.Errorf("%s: %s %s %s pulls %s, not from the mirror", component, id, c.Field, c.Name, c.Image)
				}
				return c.Image, nil
			})
			walkAllStrings(o.Object, "", func(path, s string) {
				for _, img := range explicitImages(s) {
					configImages++
					if !strings.HasPrefix(img, mirror+"/") {
						t.Errorf("%s: %s %s names image %s of another registry", component, id, path, img)
					}
				}
			})
		}
	}
	// The scan must see the images, or it proves nothing: the full preset has dozens.
	if podImages < 20 || configImages < podImages+10 {
		t.Errorf("found %d pod-spec images and %d image strings; expected more", podImages, configImages)
	}
	for component, list := range ra.runtime {
		for _, ri := range list {
			if !strings.HasPrefix(ri.Image, mirror+"/") {
				t.Errorf("%s: runtime image %s (%s) is not under the mirror", component, ri.Image, ri.Use)
			}
		}
	}
	for component, img := range ra.tests {
		if !strings.HasPrefix(img, mirror+"/") {
			t.Errorf("%s: test image %s is not under the mirror", component, img)
		}
	}

	// generate writes the same: the manifests hold no image of another registry.
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	objs, err := LoadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		walkAllStrings(o.Object, "", func(path, s string) {
			for _, img := range explicitImages(s) {
				if !strings.HasPrefix(img, mirror+"/") {
					t.Errorf("manifests: %s %s names image %s", manifest.IDOf(o), path, img)
				}
			}
		})
	}
}

// TestListImagesIncludesRuntimeImages: the images a controller pulls at run time are listed
// with their component, as are the test images; with a mirror, each with its original.
func TestListImagesIncludesRuntimeImages(t *testing.T) {
	dir, _ := fullPresetApp(t, nil)
	rep, err := ListImages(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	has := func(rep *ImagesReport, component, kind, image, use string) *ImageEntry {
		t.Helper()
		for i, e := range rep.Images {
			if e.Component == component && e.Kind == kind && e.Image == image && strings.Contains(strings.Join(e.Uses, "; "), use) {
				return &rep.Images[i]
			}
		}
		t.Errorf("no %s image %s of %s used for %q", kind, image, component, use)
		return &ImageEntry{}
	}
	has(rep, "argo", images.Runtime, "quay.io/argoproj/argoexec:v3.7.18", "--executor-image")
	has(rep, "katib", images.Runtime, "ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0", "metrics collector")
	has(rep, "katib", images.Runtime, "ghcr.io/kubeflow/katib/tfevent-metrics-collector:v0.19.0", "TensorFlowEvent")
	has(rep, "katib", images.Runtime, "ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0", "suggestion service random")
	has(rep, "katib", images.Runtime, "ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0", "suggestion service grid")
	has(rep, "katib", images.Runtime, "ghcr.io/kubeflow/katib/earlystopping-medianstop:v0.19.0", "early stopping")
	has(rep, "jupyterhub", images.Runtime, "quay.io/jupyter/pytorch-notebook:2024-12-09", "PyTorch")
	has(rep, "jupyterhub", images.Runtime, "quay.io/jupyter/scipy-notebook:2024-12-09", "KubeSpawner image")
	has(rep, "tf-job-operator", images.Runtime, "docker.io/library/alpine:3.10", "--pytorch-init-container-image")
	has(rep, "katib", images.Workload, "docker.io/library/mysql:8.4.10", "katib-mysql container mysql")
	has(rep, "modeldb", images.Workload, "docker.io/library/mysql:8.4.10", "modeldb-mysql container mysql")
	for _, c := range []string{"argo", "katib", "tf-job-operator"} {
		has(rep, c, images.Test, smoketest.DefaultImage, "kfdeploy test")
	}
	for _, e := range rep.Images {
		if e.Original != "" {
			t.Errorf("%s: original %s without spec.images", e.Image, e.Original)
		}
	}

	dir, _ = fullPresetApp(t, &config.Images{Registry: mirror, Overrides: map[string]string{"alpine:3.10": "docker.io/library/alpine:3.21"}})
	rep, err = ListImages(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if e := has(rep, "argo", images.Runtime, mirror+"/argoproj/argoexec:v3.7.18", "--executor-image"); e.Original != "quay.io/argoproj/argoexec:v3.7.18" {
		t.Errorf("argoexec's original: %q", e.Original)
	}
	has(rep, "tf-job-operator", images.Runtime, mirror+"/library/alpine:3.21", "--pytorch-init-container-image")
	has(rep, "argo", images.Test, mirror+"/library/busybox:1.37.0", "kfdeploy test")

	// The copies start from the images as named (after overrides) and land under the mirror.
	copies, err := rep.MirrorCopies("mirror.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"docker.io/library/alpine:3.21":     "mirror.example.com/library/alpine:3.21",
		"quay.io/argoproj/argoexec:v3.7.18": "mirror.example.com/argoproj/argoexec:v3.7.18",
		"docker.io/library/mysql:8.4.10":    "mirror.example.com/library/mysql:8.4.10",
	}
	seen := map[string]int{}
	for _, c := range copies {
		seen[c.From]++
		if to, ok := want[c.From]; ok && to != c.To {
			t.Errorf("copy %s → %s, want %s", c.From, c.To, to)
		}
	}
	for from := range want {
		if seen[from] != 1 {
			t.Errorf("%s is copied %d times", from, seen[from])
		}
	}
	if len(copies) != len(seen) || len(copies) < 30 {
		t.Errorf("%d copies of %d images", len(copies), len(seen))
	}
}

// mirrorComponent names its images outside the image table: a parameter used in a pod spec and
// in configuration, and a literal in a pod spec.
const mirrorComponent = `{
  params: { toolImage: { default: 'quay.io/team/tool:1', description: 'tool' } },
  runtimeImages(p, env):: [{ image: p.toolImage, use: 'jobs the operator starts' }],
  render(p, env):: [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'op', namespace: env.namespace },
      data: { config: std.manifestJson({ jobImage: p.toolImage }), hash: std.md5(p.toolImage) } },
    { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'once', namespace: env.namespace },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [
        { name: 'a', image: p.toolImage },
        { name: 'b', image: 'docker.io/team/tool:1' },
      ] } } } },
  ],
}
`

func TestMirrorRewritesParametersConfigAndCollisions(t *testing.T) {
	dir := newTestApp(t, map[string]string{"op": mirrorComponent}, "op")
	appYAML := filepath.Join(dir, config.FileName)
	data, err := os.ReadFile(appYAML)
	if err != nil {
		t.Fatal(err)
	}
	base := string(data)
	// quay.io/team/tool:1 and docker.io/team/tool:1 would both be registry.local:5000/kf/team/tool:1.
	writeFile(t, appYAML, base+"  images:\n    registry: "+mirror+"\n")
	_, err = ListImages(context.Background(), dir)
	line := strings.Count(base, "\n") + 2
	want := fmt.Sprintf("%s:%d: spec.images.registry ", appYAML, line) + mirror + ": docker.io/team/tool:1 (component op) and quay.io/team/tool:1 (component op) would both be pulled as " + mirror + "/team/tool:1"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("collision: %v\nwant %s", err, want)
	}
	if _, err := Generate(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "would both be pulled as") {
		t.Errorf("generate with colliding images: %v", err)
	}

	// An override of an image no component uses is a misspelling.
	writeFile(t, appYAML, base+"  images:\n    overrides:\n      quay.io/team/tool:2: quay.io/team/tool:3\n")
	want = fmt.Sprintf("%s:%d: spec.images.overrides: no component of the app uses image quay.io/team/tool:2", appYAML, line+1)
	if _, err := ListImages(context.Background(), dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("unused override: %v\nwant %s", err, want)
	}

	writeFile(t, appYAML, base+"  images:\n    registry: "+mirror+"\n    overrides:\n      docker.io/team/tool:1: docker.io/team/tool-hub:1\n")
	store, err := secrets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := renderImages(context.Background(), a, dir, store, true)
	if err != nil {
		t.Fatal(err)
	}
	var cm, job map[string]any
	for _, o := range ra.objs["op"] {
		switch o.GetKind() {
		case "ConfigMap":
			cm = o.Object
		case "Job":
			job = o.Object
		}
	}
	data2 := cm["data"].(map[string]any)
	if !strings.Contains(data2["config"].(string), `"jobImage": "`+mirror+`/team/tool:1"`) {
		t.Errorf("configuration: %v", data2["config"])
	}
	// The template hashed the rewritten image, not the original.
	if data2["hash"] != md5Hex(mirror+"/team/tool:1") {
		t.Errorf("config hash %v is not the rewritten image's", data2["hash"])
	}
	var got []string
	_ = images.PodImages(job, func(c images.Container) (string, error) {
		got = append(got, c.Image)
		return c.Image, nil
	})
	if strings.Join(got, " ") != mirror+"/team/tool:1 "+mirror+"/team/tool-hub:1" {
		t.Errorf("pod images %v", got)
	}
	if len(ra.runtime["op"]) != 1 || ra.runtime["op"][0].Image != mirror+"/team/tool:1" {
		t.Errorf("runtime images %v", ra.runtime["op"])
	}
}

func TestTestImagesFollowTheMirror(t *testing.T) {
	_, a := fullPresetApp(t, &config.Images{Registry: mirror})
	opts := TestRunOptions(a, TestOptions{Images: map[string]string{"workflow": "quay.io/me/shell:2"}})
	if err := rewriteTestImages(a, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Images["tfjob"] != mirror+"/library/busybox:1.37.0" || opts.Images["workflow"] != mirror+"/me/shell:2" {
		t.Errorf("test images %v", opts.Images)
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
