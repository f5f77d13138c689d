package manifest

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name}}}
	if ns != "" {
		o.SetNamespace(ns)
	}
	return o
}

func TestLevels(t *testing.T) {
	cases := map[string]int{
		"Namespace": LevelFoundation,
		"CustomResourceDefinition.apiextensions.k8s.io": LevelFoundation,
		"ClusterRole.rbac.authorization.k8s.io":         LevelConfig,
		"PersistentVolumeClaim":                         LevelConfig,
		"Service":                                       LevelConfig,
		"Deployment.apps":                               LevelWorkload,
		"StatefulSet.apps":                              LevelWorkload,
		"ValidatingWebhookConfiguration.admissionregistration.k8s.io": LevelWebhook,
		"TFJob.kubeflow.org": LevelCustom,
	}
	for gk, want := range cases {
		if got := Level(schema.ParseGroupKind(gk)); got != want {
			t.Errorf("Level(%s) = %d, want %d", gk, got, want)
		}
	}
}

func TestSortOrdersByKindThenNamespaceThenName(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj("apps/v1", "Deployment", "b", "x"),
		obj("kubeflow.org/v1", "TFJob", "a", "job"),
		obj("v1", "Service", "a", "svc"),
		obj("apps/v1", "Deployment", "a", "y"),
		obj("v1", "Namespace", "", "a"),
		obj("apps/v1", "Deployment", "a", "x"),
	}
	Sort(objs)
	var got []string
	for _, o := range objs {
		got = append(got, IDOf(o).String())
	}
	want := "Namespace/a a/Service/svc a/Deployment.apps/x a/Deployment.apps/y b/Deployment.apps/x a/TFJob.kubeflow.org/job"
	if strings.Join(got, " ") != want {
		t.Errorf("order:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	levels := ByLevel(objs)
	if len(levels[LevelFoundation]) != 1 || len(levels[LevelWorkload]) != 3 || len(levels[LevelCustom]) != 1 {
		t.Errorf("ByLevel sizes: %d %d %d", len(levels[LevelFoundation]), len(levels[LevelWorkload]), len(levels[LevelCustom]))
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := []*unstructured.Unstructured{obj("v1", "ConfigMap", "ns", "a"), obj("v1", "ConfigMap", "ns", "b")}
	in[0].Object["data"] = map[string]any{"z": "1", "a": "2"}
	data, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Encode(in)
	if string(data) != string(again) {
		t.Fatal("Encode is not deterministic")
	}
	if !strings.Contains(string(data), "data:\n  a: \"2\"\n  z: \"1\"") {
		t.Errorf("keys are not sorted:\n%s", data)
	}
	out, err := Decode("x.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1].GetName() != "b" {
		t.Fatalf("decoded %d objects", len(out))
	}
}

func TestDecodeErrorsNameFileAndDocument(t *testing.T) {
	_, err := Decode("comp.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "comp.yaml: document 2") || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("got %v, want an error naming comp.yaml, document 2 and metadata.name", err)
	}
	_, err = Decode("bad.yaml", []byte("a: [\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: document 1") {
		t.Errorf("got %v, want an error naming bad.yaml document 1", err)
	}
}

func TestDecodeExpandsLists(t *testing.T) {
	out, err := Decode("l.yaml", []byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"))
	if err != nil || len(out) != 2 {
		t.Fatalf("got %d objects, %v", len(out), err)
	}
}

// A stream long enough to be decoded by several workers keeps its order (empty documents and
// lists included), and the error is the first failing document's, counted as read in order.
func TestDecodeLargeStreamKeepsOrderAndFirstError(t *testing.T) {
	var b strings.Builder
	want := 0
	for i := range 1000 {
		switch {
		case i%100 == 7:
			b.WriteString("---\n# empty\n")
		case i%100 == 9:
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%04d-a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%04d-b}}\n", i, i)
			want += 2
		default:
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%04d}\n", i)
			want++
		}
	}
	good := b.String()
	out, err := Decode("big.yaml", []byte(good))
	if err != nil || len(out) != want {
		t.Fatalf("got %d objects, %v; want %d", len(out), err, want)
	}
	for i := 1; i < len(out); i++ {
		if out[i-1].GetName() >= out[i].GetName() {
			t.Fatalf("object %d (%s) after %s: order not kept", i, out[i].GetName(), out[i-1].GetName())
		}
	}
	bad := strings.Replace(good, "metadata: {name: cm-0612}", "metadata: {}", 1)
	bad = strings.Replace(bad, "metadata: {name: cm-0904}", "metadata: [", 1)
	if _, err := Decode("big.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "big.yaml: document 613:") {
		t.Errorf("got %v, want the error of document 613", err)
	}
}
