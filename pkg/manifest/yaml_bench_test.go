package manifest

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// benchObjects are n objects like an app's: ConfigMaps, Services and Deployments in equal parts.
func benchObjects(n int) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	for i := 0; len(objs) < n; i++ {
		name := fmt.Sprintf("obj-%05d", i)
		meta := map[string]any{"name": name, "namespace": "bench", "labels": map[string]any{"bench": "true", "app": name}}
		var o map[string]any
		switch i % 3 {
		case 0:
			o = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": map[string]any{"index": fmt.Sprint(i), "payload": strings.Repeat("x", 256)}}
		case 1:
			o = map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": map[string]any{
				"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8080)}}}}
		default:
			o = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": map[string]any{
				"replicas": int64(0), "selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}}, "spec": map[string]any{
					"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}}}}}}
		}
		objs = append(objs, &unstructured.Unstructured{Object: o})
	}
	return objs
}

func BenchmarkDecode(b *testing.B) {
	data, err := Encode(benchObjects(5000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
