package render

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// routeInfo is a Mapping's entry in a Service's kfdeploy.dev/routes annotation (k.libsonnet,
// ambassadorConfig).
type routeInfo struct {
	Prefix string `json:"prefix"`
	SignIn string `json:"signIn"`
	Access string `json:"access"`
	UI     string `json:"ui"`
}

// routesOf reads the Mappings of every rendered Service with their kfdeploy.dev/routes entries,
// failing for a Mapping without one.
func routesOf(t *testing.T, file string, objs []*unstructured.Unstructured) map[string]routeInfo {
	t.Helper()
	out := map[string]routeInfo{}
	for _, o := range objs {
		var info map[string]routeInfo
		if a, ok := o.GetAnnotations()["kfdeploy.dev/routes"]; ok {
			if err := json.Unmarshal([]byte(a), &info); err != nil {
				t.Fatalf("%s: %s: kfdeploy.dev/routes: %v", file, o.GetName(), err)
			}
		}
		for _, r := range emissaryDocs(t, o) {
			if r["kind"] != "Mapping" {
				continue
			}
			name := fmt.Sprint(r["name"])
			i, ok := info[name]
			if !ok || i.Prefix != r["prefix"] {
				t.Errorf("%s: Mapping %s has no kfdeploy.dev/routes entry with its prefix (%+v)", file, name, i)
			}
			out[name] = i
		}
	}
	return out
}

// TestRoutesSignIn: by default, every route the gateway serves either requires a sign-in or
// reaches a read-only UI; the open UIs that can write (Katib's, the Model Registry's API, Argo's
// in authMode server) are absent until their parameter asks for them, and then say so.
func TestRoutesSignIn(t *testing.T) {
	uis := map[string]bool{}
	for file, objs := range renderAll(t) {
		for name, r := range routesOf(t, file, objs) {
			switch {
			case r.SignIn == "":
				t.Errorf("%s: route %s declares no signIn", file, name)
			case r.SignIn == "none" && r.Access != "read-only":
				t.Errorf("%s: route %s (%s) can write and has no sign-in, by default", file, name, r.Prefix)
			}
			if r.UI != "" {
				uis[r.Prefix] = true
			}
		}
	}
	for _, prefix := range []string{"/", "/hub/", "/argo/", "/tfjobs/", "/k8s/ui/", "/notebook/jupyter/"} {
		if !uis[prefix] {
			t.Errorf("no UI entry point at %s (its Mapping needs ui=...)", prefix)
		}
	}

	for _, c := range []struct {
		component string
		params    map[string]any
		mapping   string
	}{
		{"katib", map[string]any{"uiRoute": true}, "katib"},
		{"modeldb", map[string]any{"route": true}, "model-registry"},
		{"argo", map[string]any{"authMode": "server", "route": true}, "argo"},
	} {
		routes := routesOf(t, c.component, render(t, c.component, c.params))
		if r, ok := routes[c.mapping]; !ok || r.SignIn != "none" || r.Access != "read-write" || r.UI == "" {
			t.Errorf("%s with %v: route %s = %+v, want an open read-write UI entry", c.component, c.params, c.mapping, r)
		}
		if len(routesOf(t, c.component, render(t, c.component, nil))) != 0 && c.component != "argo" {
			t.Errorf("%s routes by default", c.component)
		}
	}
	if routes := routesOf(t, "argo", render(t, "argo", map[string]any{"authMode": "server"})); len(routes) != 0 {
		t.Errorf("argo authMode server is routed without route: true: %v", routes)
	}
	if r := routesOf(t, "argo", render(t, "argo", nil))["argo"]; r.SignIn != "kubernetes-token" {
		t.Errorf("argo authMode client: signIn %q, want kubernetes-token", r.SignIn)
	}
}

// TestDashboardLinksAreRouted: every link of the central dashboard's default menu reaches a
// route of the default platform other than the dashboard's own catch-all "/", so that no
// default link lands on the gateway's 404 (or, through "/", on the dashboard itself).
func TestDashboardLinksAreRouted(t *testing.T) {
	var prefixes []string
	for _, name := range builtin(t) {
		for _, r := range routesOf(t, name, render(t, name, requiredParams[name])) {
			if r.Prefix != "/" {
				prefixes = append(prefixes, r.Prefix)
			}
		}
	}
	var links []string
	for _, o := range render(t, "centraldashboard", nil) {
		if o.GetKind() != "ConfigMap" || o.GetName() != "centraldashboard-config" {
			continue
		}
		text, _, _ := unstructured.NestedString(o.Object, "data", "links")
		var doc struct {
			MenuLinks []struct {
				Link string `json:"link"`
			} `json:"menuLinks"`
		}
		if err := json.Unmarshal([]byte(text), &doc); err != nil {
			t.Fatalf("centraldashboard-config links: %v", err)
		}
		for _, l := range doc.MenuLinks {
			links = append(links, l.Link)
		}
	}
	if len(links) == 0 {
		t.Fatal("the central dashboard renders no menu links")
	}
	for _, link := range links {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(link, p) }) {
			t.Errorf("dashboard menu link %s reaches no route of the default platform (routes: %v)", link, prefixes)
		}
	}
}
