package cli

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const imagesAppYAML = `apiVersion: kfdeploy.dev/v1alpha1
kind: App
metadata:
  name: airgap
spec:
  platform: none
  namespace: kubeflow
  components:
    - name: argo
    - name: tf-job-operator
  images:
    registry: registry.local/kf
`

func TestImagesListsWhatTheClusterPulls(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "airgap")
	write(t, filepath.Join(dir, "app.yaml"), imagesAppYAML)
	var doc struct {
		App      string `json:"app"`
		Registry string `json:"registry"`
		Images   []struct {
			Image, Original, Component, Kind string
			Uses                             []string
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "images", "--app-dir", dir, "-o", "json")), &doc); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range doc.Images {
		kinds[e.Kind]++
		if !strings.HasPrefix(e.Image, "registry.local/kf/") || e.Original == "" || len(e.Uses) == 0 {
			t.Errorf("entry %+v", e)
		}
	}
	// argo: controller, server; runtime: argoexec, alpine; test: busybox for both components.
	if doc.App != "airgap" || doc.Registry != "registry.local/kf" || kinds["workload"] != 3 || kinds["runtime"] != 2 || kinds["test"] != 2 {
		t.Errorf("document: app %s, registry %s, kinds %v", doc.App, doc.Registry, kinds)
	}

	// The -o json document is a schema for scripts: its keys are the README's.
	var raw struct {
		Images []map[string]any `json:"images"`
	}
	out := mustRun(t, "images", "--app-dir", dir, "-o", "json")
	_, keys := jsonKeys(t, json.RawMessage(out))
	if want := sortedCopy("app", "namespace", "registry", "images"); !reflect.DeepEqual(keys, want) {
		t.Errorf("document keys %v, want %v", keys, want)
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw.Images) == 0 {
		t.Fatalf("images: %v", err)
	}
	for _, e := range raw.Images {
		var got []string
		for k := range e {
			got = append(got, k)
		}
		if want := sortedCopy("image", "original", "component", "kind", "uses"); !reflect.DeepEqual(sortedCopy(got...), want) {
			t.Errorf("entry keys %v, want %v", sortedCopy(got...), want)
		}
	}

	table := mustRun(t, "images", "--app-dir", dir)
	if !strings.HasPrefix(table, "COMPONENT  ") || !strings.Contains(table, "registry.local/kf/argoproj/argoexec:v3.7.18") {
		t.Errorf("table:\n%s", table)
	}
	if y := mustRun(t, "images", "--app-dir", dir, "-o", "yaml"); !strings.Contains(y, "original: quay.io/argoproj/argoexec:v3.7.18") {
		t.Errorf("yaml:\n%s", y)
	}

	script := mustRun(t, "images", "--app-dir", dir, "--mirror", "mirror.example.com:5000")
	for _, want := range []string{
		"#!/bin/sh\n",
		"\nset -eu\n",
		"\nskopeo copy --all docker://quay.io/argoproj/argoexec:v3.7.18 docker://mirror.example.com:5000/argoproj/argoexec:v3.7.18\n",
		"\nskopeo copy --all docker://docker.io/library/alpine:3.10 docker://mirror.example.com:5000/library/alpine:3.10\n",
		"\nskopeo copy --all docker://docker.io/library/busybox:1.37.0 docker://mirror.example.com:5000/library/busybox:1.37.0\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if n := strings.Count(script, "skopeo copy"); n != 6 {
		t.Errorf("%d copies, want 6 (each image once):\n%s", n, script)
	}
}

func TestImagesRejects(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "airgap")
	write(t, filepath.Join(dir, "app.yaml"), imagesAppYAML)
	mustFail(t, []string{`--output "xml" is not supported`}, "images", "--app-dir", dir, "-o", "xml")
	mustFail(t, []string{"--mirror", `"mirror" is not a registry prefix`}, "images", "--app-dir", dir, "--mirror", "mirror")
	mustFail(t, []string{"--mirror prints a shell script"}, "images", "--app-dir", dir, "--mirror", "m.example.com", "-o", "json")
	write(t, filepath.Join(dir, "app.yaml"), strings.Replace(imagesAppYAML, "registry.local/kf", "registry.local/kf:1", 1))
	mustFail(t, []string{"app.yaml:12: spec.images.registry"}, "images", "--app-dir", dir)
}
