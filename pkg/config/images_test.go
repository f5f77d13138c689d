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

func TestPullSecretsDecode(t *testing.T) {
	a, err := Parse("app.yaml", []byte(strings.ReplaceAll(imagesApp, "%s", `    pullSecrets:
      - regcred
      - name: mirror-login
        file: auth/mirror.json
`)))
	if err != nil {
		t.Fatal(err)
	}
	ps := a.Spec.Images.PullSecrets
	want := []PullSecret{{Name: "regcred", Line: 12}, {Name: "mirror-login", File: "auth/mirror.json", Line: 13}}
	if len(ps) != 2 || ps[0] != want[0] || ps[1] != want[1] {
		t.Errorf("decoded %+v, want %+v", ps, want)
	}
	if got := a.Spec.Images.PullSecretNames(); strings.Join(got, ",") != "regcred,mirror-login" {
		t.Errorf("names %v", got)
	}
	var none *Images
	if none.PullSecretNames() != nil {
		t.Error("nil images name pull secrets")
	}
}

func TestPullSecretsErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ images, want string }{
		{"    pullSecrets: regcred\n", "app.yaml:11: spec.images.pullSecrets must be a list"},
		{"    pullSecrets:\n      - Reg_Cred\n", `app.yaml:12: spec.images.pullSecrets: "Reg_Cred" is not a valid Secret name`},
		{"    pullSecrets:\n      - a\n      - a\n", "app.yaml:13: spec.images.pullSecrets: a is listed twice (first on line 12)"},
		{"    pullSecrets:\n      - file: x.json\n", "app.yaml:12: spec.images.pullSecrets: an entry has no name"},
		{"    pullSecrets:\n      - name: a\n        file: \"\"\n", "app.yaml:13: spec.images.pullSecrets: file is empty"},
		{"    pullSecrets:\n      - name: a\n        path: x.json\n", "app.yaml:13: spec.images.pullSecrets: field path not found (expected name, file)"},
		{"    pullSecrets:\n      - [a]\n", "app.yaml:12: spec.images.pullSecrets: each entry is a Secret name or {name, file}"},
	} {
		_, err := Parse("app.yaml", []byte(strings.ReplaceAll(imagesApp, "%s", tc.images)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("images %q: error %v, want %q", tc.images, err, tc.want)
		}
	}
}
