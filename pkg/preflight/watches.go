package preflight

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// A program that lists and watches kinds the app does not render (a gateway watching every Gateway
// API kind) waits forever for one the API server does not serve: its component names them on
// the workload, and the apis check finds the missing ones before the apply.
const (
	// AnnotationWatches lists the kinds a workload's program watches, comma-separated, each as
	// apiVersion/Kind ("gateway.networking.k8s.io/v1/GRPCRoute", "v1/Service").
	AnnotationWatches = "kfdeploy.dev/watches"
	// AnnotationWatchesInstall says how to install those kinds when the cluster lacks them.
	AnnotationWatchesInstall = "kfdeploy.dev/watches-install"
)

// watcher is one object whose program waits for kinds the server does not serve.
type watcher struct {
	file, name string
	missing    []kindKey
	install    string
}

// parseWatched splits an AnnotationWatches value into apiVersion/kind pairs.
func parseWatched(value string) ([]kindKey, error) {
	var out []kindKey
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndex(item, "/")
		if i <= 0 || i == len(item)-1 {
			return nil, fmt.Errorf("%q is not apiVersion/Kind", item)
		}
		if _, err := schema.ParseGroupVersion(item[:i]); err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, kindKey{item[:i], item[i+1:]})
	}
	return out, nil
}

// installRemedies maps each kind some workload watches to how to install it, so that an object
// of that kind which is not served gets that remedy instead of "fix apiVersion".
func installRemedies(objs []*unstructured.Unstructured) map[kindKey]string {
	out := map[kindKey]string{}
	for _, o := range objs {
		install := o.GetAnnotations()[AnnotationWatchesInstall]
		kinds, err := parseWatched(o.GetAnnotations()[AnnotationWatches])
		if err != nil || install == "" {
			continue
		}
		for _, k := range kinds {
			out[k] = install
		}
	}
	return out
}

// evaluateWatches finds the workloads whose program watches a kind that is neither served nor
// defined by a CustomResourceDefinition of the app; a malformed annotation fails too.
func evaluateWatches(objs []*unstructured.Unstructured, files map[manifest.ID]string, served map[kindKey]bool, failed map[string]error) []Finding {
	crds := crdVersions(objs)
	var watchers []watcher
	var findings []Finding
	for _, o := range objs {
		value, ok := o.GetAnnotations()[AnnotationWatches]
		if !ok {
			continue
		}
		file := files[manifest.IDOf(o)]
		if file == "" {
			file = "manifests"
		}
		name := fmt.Sprintf("%s %s", o.GetKind(), qualifiedName(o))
		kinds, err := parseWatched(value)
		if err != nil {
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("%s: %s: annotation %s: %v", file, name, AnnotationWatches, err),
				Remedy:  "fix the annotation in the component that renders " + file + " (comma-separated apiVersion/Kind), then run 'kfdeploy generate'"})
			continue
		}
		w := watcher{file: file, name: name, install: o.GetAnnotations()[AnnotationWatchesInstall]}
		for _, k := range kinds {
			gv, _ := schema.ParseGroupVersion(k.gv)
			if served[k] || failed[k.gv] != nil {
				continue // a group whose discovery failed is reported by the apis check
			}
			if versions, ok := crds[schema.GroupKind{Group: gv.Group, Kind: k.kind}]; ok && versions[gv.Version] {
				continue
			}
			w.missing = append(w.missing, k)
		}
		if len(w.missing) > 0 {
			watchers = append(watchers, w)
		}
	}
	sort.Slice(watchers, func(i, j int) bool { return watchers[i].file+watchers[i].name < watchers[j].file+watchers[j].name })
	for _, w := range watchers {
		kinds := make([]string, len(w.missing))
		for i, k := range w.missing {
			kinds[i] = k.gv + " " + k.kind
		}
		remedy := w.install
		if remedy == "" {
			remedy = "install the CustomResourceDefinitions of these kinds on the cluster"
		}
		findings = append(findings, Finding{Status: Fail,
			Finding: fmt.Sprintf("%s: %s watches %s, which the server does not serve: its program would wait for them forever", w.file, w.name, strings.Join(kinds, ", ")),
			Remedy:  remedy + ", then run 'kfdeploy apply' again"})
	}
	return findings
}
