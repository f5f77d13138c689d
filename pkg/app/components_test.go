package app

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestImages(t *testing.T) {
	pod := func(images ...string) map[string]any {
		var containers []any
		for _, img := range images {
			containers = append(containers, map[string]any{"name": "c", "image": img})
		}
		return map[string]any{"initContainers": []any{map[string]any{"name": "init", "image": "init:1"}}, "containers": containers}
	}
	obj := func(apiVersion, kind string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "x"}, "spec": spec}}
	}
	template := func(images ...string) map[string]any {
		return map[string]any{"template": map[string]any{"spec": pod(images...)}}
	}
	objs := []*unstructured.Unstructured{
		obj("apps/v1", "Deployment", template("b:1", "a:1")),
		obj("extensions/v1beta1", "Deployment", template("old:1")),
		obj("apps/v1", "StatefulSet", template("a:1")),
		obj("apps/v1", "DaemonSet", template("ds:1")),
		obj("batch/v1", "Job", template("job:1")),
		obj("batch/v1", "CronJob", map[string]any{"jobTemplate": map[string]any{"spec": template("cron:1")}}),
		obj("v1", "Pod", pod("pod:1")),
		// Not pod templates: a custom kind that happens to be called Deployment, and a ConfigMap.
		obj("example.com/v1", "Deployment", template("custom:1")),
		{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}, "data": map[string]any{"image": "cm:1"}}},
	}
	want := []string{"a:1", "b:1", "cron:1", "ds:1", "init:1", "job:1", "old:1", "pod:1"}
	if got := Images(objs); !reflect.DeepEqual(got, want) {
		t.Errorf("Images = %v, want %v", got, want)
	}
	if got := Images(nil); got == nil || len(got) != 0 {
		t.Errorf("Images(nil) = %#v, want an empty list (JSON [])", got)
	}
}
