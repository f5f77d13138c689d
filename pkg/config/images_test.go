package config

import (
	"strings"
	"testing"
)

const imagesApp = `apiVersion: kfdeploy.dev/v1alpha1
kind: App
metadata:
  name: demo
spec:
  platform: none
  namespace: kubeflow
  components:
    - name: core
  images:
%s`

func TestImagesDecodes(t *testing.T) {
	a, err := Parse("app.yaml", []byte(strings.ReplaceAll(imagesApp, "%s", `    registry: registry.local:5000/kf
    overrides:
      mysql:8.0.40: docker.io/library/mysql:8.0.41
`)))
	if err != nil {
		t.Fatal(err)
	}
	im := a.Spec.Images
	if im.Registry != "registry.local:5000/kf" || im.Overrides["mysql:8.0.40"] != "docker.io/library/mysql:8.0.41" {
		t.Errorf("decoded %+v", im)
	}
	if im.Line("registry") != 11 || im.Line("mysql:8.0.40") != 13 {
		t.Errorf("lines: registry %d, override %d", im.Line("registry"), im.Line("mysql:8.0.40"))
	}
	r, err := im.Rewriter()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Rewrite("docker.io/library/mysql:8.0.40"); got != "registry.local:5000/kf/library/mysql:8.0.41" {
		t.Errorf("rewrite: %s", got)
	}
}

func TestImagesErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ images, want string }{
		{"    registry: mirror\n", "app.yaml:11: spec.images.registry: mirror registry \"mirror\" is not a registry prefix"},
		{"    registry: [a]\n", "app.yaml:11: spec.images.registry must be a string"},
		{"    registry: registry.local\n    overrides:\n      quay.io/a/b:1: \"Not:Valid\"\n", "app.yaml:13: spec.images.overrides: override of \"quay.io/a/b:1\": image \"Not:Valid\" is not a valid image reference"},
		{"    overrides: [a]\n", "app.yaml:11: spec.images.overrides must map images"},
		{"    mirror: registry.local\n", "app.yaml:11: field mirror not found in type config.Images"},
		{"    overrides:\n      a:1: b:1\n      b:1: c:1\n", "app.yaml:11: spec.images: override of docker.io/library/a:1 names b:1, which is overridden too"},
	} {
		_, err := Parse("app.yaml", []byte(strings.ReplaceAll(imagesApp, "%s", tc.images)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("images %q: error %v, want %q", tc.images, err, tc.want)
		}
	}
}

func TestNoImagesRewritesNothing(t *testing.T) {
	var im *Images
	r, err := im.Rewriter()
	if err != nil || r.Enabled() {
		t.Errorf("nil images: %v, enabled %v", err, r.Enabled())
	}
}
