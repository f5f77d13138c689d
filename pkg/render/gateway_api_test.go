package render

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// signInOf is the Middleware each component's routes must go through behind the gateway
// component: the admin group for UIs that write without acting as the signed-in user, any
// signed-in user for those that act as the user or only show. A component that renders an
// HTTPRoute and is missing here fails TestGatewayAPIRoutesSignIn: decide, then add it.
var signInOf = map[string]string{
	"centraldashboard": "signin",
	"jupyterhub":       "signin",
	"jupyter":          "signin",
	"katib":            "signin-admins",
	"modeldb":          "signin-admins",
	"argo":             "signin-admins",
	"tf-job-dashboard": "signin-admins",
	"k8s-dashboard":    "signin-admins",
}

// routedParams switch on every route a component can have.
var routedParams = map[string]map[string]any{
	"katib":   {"uiRoute": true},
	"modeldb": {"route": true},
}

// gatewayApp is the full preset (whose gateway is the gateway component), plus the jupyter
// component, each with every route switched on: component → objects.
func gatewayApp(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	components := append(slices.Clone(presets(t)["full"]), "jupyter")
	if g, err := GatewayOf(components); err != nil || g != GatewayAPI {
		t.Fatalf("the full preset's gateway is %q (%v), want %q: every route behind the sign-in", g, err, GatewayAPI)
	}
	out := map[string][]*unstructured.Unstructured{}
	for _, c := range components {
		out[c] = renderFor(t, c, routedParams[c], GatewayAPI)
	}
	return out
}

type httpRoute struct {
	component string
	obj       *unstructured.Unstructured
}

func (r httpRoute) String() string { return r.component + ": HTTPRoute " + r.obj.GetName() }

func httpRoutesOf(app map[string][]*unstructured.Unstructured) []httpRoute {
	var out []httpRoute
	for c, objs := range app {
		for _, o := range objs {
			if o.GetKind() == "HTTPRoute" {
				out = append(out, httpRoute{c, o})
			}
		}
	}
	return out
}

// filterMiddleware is the Middleware an ExtensionRef filter names, "" for other filters.
func filterMiddleware(f map[string]any) string {
	if f["type"] != "ExtensionRef" {
		return ""
	}
	ref, _ := f["extensionRef"].(map[string]any)
	if ref["group"] != "traefik.io" || ref["kind"] != "Middleware" {
		return ""
	}
	name, _ := ref["name"].(string)
	return name
}

// TestGatewayAPIRoutesSignIn enumerates every HTTPRoute of the full preset with the gateway
// component (every optional route on): each rule that reaches a backend goes through a sign-in
// Middleware the gateway renders, the one its component's UI calls for, except the sign-in flow
// itself (/oauth2/ to oauth2-proxy); each rule without a backend only redirects.
func TestGatewayAPIRoutesSignIn(t *testing.T) {
	app := gatewayApp(t)
	middlewares := map[string]bool{}
	services := map[string]bool{}
	for _, objs := range app {
		for _, o := range objs {
			switch o.GetKind() {
			case "Middleware":
				middlewares[o.GetName()] = true
			case "Service":
				ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
				for _, p := range ports {
					services[fmt.Sprintf("%s:%v", o.GetName(), p.(map[string]any)["port"])] = true
				}
			}
		}
	}
	for _, mw := range []string{"signin", "signin-admins"} {
		if !middlewares[mw] {
			t.Errorf("the gateway component renders no Middleware %s", mw)
		}
	}
	routes := httpRoutesOf(app)
	open, redirects, signedIn := 0, 0, map[string]int{}
	for _, r := range routes {
		parents, _, _ := unstructured.NestedSlice(r.obj.Object, "spec", "parentRefs")
		rules, _, _ := unstructured.NestedSlice(r.obj.Object, "spec", "rules")
		if len(parents) != 1 || len(rules) == 0 {
			t.Errorf("%s: %d parentRefs and %d rules, want one Gateway and some rules", r, len(parents), len(rules))
			continue
		}
		parent := parents[0].(map[string]any)
		if parent["kind"] != "Gateway" || parent["name"] != "gateway" {
			t.Errorf("%s: parent %v, want the Gateway gateway", r, parent)
		}
		for i, rule := range rules {
			rule := rule.(map[string]any)
			where := fmt.Sprintf("%s rule %d", r, i)
			backends := asSlice(rule["backendRefs"])
			var mws []string
			redirect := false
			for _, f := range asSlice(rule["filters"]) {
				f := f.(map[string]any)
				if mw := filterMiddleware(f); mw != "" {
					mws = append(mws, mw)
				}
				redirect = redirect || f["type"] == "RequestRedirect"
			}
			for _, b := range backends {
				b := b.(map[string]any)
				if !services[fmt.Sprintf("%s:%v", b["name"], b["port"])] {
					t.Errorf("%s goes to %s:%v, which is no rendered Service port", where, b["name"], b["port"])
				}
			}
			switch {
			case len(backends) == 0:
				if !redirect || parent["sectionName"] != "http" {
					t.Errorf("%s has no backend and is not the HTTP listener's redirect", where)
				}
				redirects++
			case r.component == "gateway" && r.obj.GetName() == "oauth2-proxy":
				if len(mws) != 0 || len(backends) != 1 || backends[0].(map[string]any)["name"] != "oauth2-proxy" || prefixOf(rule) != "/oauth2/" {
					t.Errorf("%s: the sign-in flow's route must send /oauth2/ to oauth2-proxy, without sign-in", where)
				}
				open++
			default:
				if parent["sectionName"] != "https" {
					t.Errorf("%s: on listener %v, want https", where, parent["sectionName"])
				}
				want, known := signInOf[r.component]
				switch {
				case !known:
					t.Errorf("%s: component %s has no entry in signInOf: decide who may use its UI", where, r.component)
				case len(mws) != 1:
					t.Errorf("%s reaches %v through Middlewares %v, want exactly one sign-in (%s)", where, backends, mws, want)
				case mws[0] != want:
					t.Errorf("%s signs in through %s, want %s", where, mws[0], want)
				case !middlewares[mws[0]]:
					t.Errorf("%s names Middleware %s, which the gateway does not render", where, mws[0])
				}
				// The sign-in must see the path the user asked for: before any rewrite.
				if filters := asSlice(rule["filters"]); len(filters) > 0 && filterMiddleware(filters[0].(map[string]any)) == "" {
					t.Errorf("%s: the sign-in filter must come first", where)
				}
				signedIn[r.component]++
			}
		}
	}
	if open != 1 || redirects != 1 {
		t.Errorf("%d open routes and %d redirects, want the sign-in flow's and the HTTP listener's", open, redirects)
	}
	for c := range signInOf {
		if signedIn[c] == 0 {
			t.Errorf("component %s renders no signed-in route with the gateway component", c)
		}
	}
	t.Logf("%d HTTPRoutes: %v signed-in rules per component", len(routes), signedIn)
}

func prefixOf(rule map[string]any) string {
	matches := asSlice(rule["matches"])
	if len(matches) != 1 {
		return ""
	}
	v, _, _ := unstructured.NestedString(matches[0].(map[string]any), "path", "value")
	return v
}

// TestGatewayAPIRoutesMatchMappings: each component's HTTPRoutes are its Emissary Mappings, one
// for one (same name, prefix, backend and rewrite), so the two gateways never route differently;
// without the gateway component there are none.
func TestGatewayAPIRoutesMatchMappings(t *testing.T) {
	app := gatewayApp(t)
	for c, objs := range app {
		if c == "gateway" {
			continue
		}
		routes := map[string]map[string]any{}
		for _, o := range objs {
			if o.GetKind() == "HTTPRoute" {
				rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
				if len(rules) != 1 {
					t.Errorf("%s: HTTPRoute %s has %d rules, want 1", c, o.GetName(), len(rules))
					continue
				}
				routes[o.GetName()] = rules[0].(map[string]any)
			}
		}
		mappings := 0
		for _, o := range objs {
			for _, m := range emissaryDocs(t, o) {
				if m["kind"] != "Mapping" {
					continue
				}
				mappings++
				name := fmt.Sprint(m["name"])
				rule, ok := routes[name]
				if !ok {
					t.Errorf("%s: Mapping %s has no HTTPRoute", c, name)
					continue
				}
				if prefixOf(rule) != m["prefix"] {
					t.Errorf("%s: HTTPRoute %s matches %s, the Mapping %v", c, name, prefixOf(rule), m["prefix"])
				}
				b := asSlice(rule["backendRefs"])[0].(map[string]any)
				service := strings.TrimPrefix(fmt.Sprint(m["service"]), "https://")
				if got := fmt.Sprintf("%s.kubeflow:%v", b["name"], b["port"]); got != service {
					t.Errorf("%s: HTTPRoute %s goes to %s, the Mapping to %s", c, name, got, service)
				}
				wantRewrite, rewrites := "/", true // Emissary's default: the prefix becomes /
				if rw, ok := m["rewrite"].(string); ok {
					wantRewrite, rewrites = rw, rw != ""
				}
				var gotRewrite string
				gotRewrites := false
				for _, f := range asSlice(rule["filters"]) {
					if v, ok, _ := unstructured.NestedString(f.(map[string]any), "urlRewrite", "path", "replacePrefixMatch"); ok {
						gotRewrite, gotRewrites = v, true
					}
				}
				if gotRewrites != rewrites || gotRewrite != wantRewrite && rewrites {
					t.Errorf("%s: HTTPRoute %s rewrites %v to %q, the Mapping %v to %q", c, name, gotRewrites, gotRewrite, rewrites, wantRewrite)
				}
			}
		}
		if mappings != len(routes) {
			t.Errorf("%s: %d Mappings and %d HTTPRoutes", c, mappings, len(routes))
		}
	}
	for file, objs := range renderAll(t) {
		if file == "gateway" {
			continue
		}
		if n := kinds(objs)["HTTPRoute"]; n != 0 {
			t.Errorf("%s renders %d HTTPRoutes without the gateway component", file, n)
		}
	}
}

func TestGatewayOf(t *testing.T) {
	for _, c := range []struct {
		components []string
		want, err  string
	}{
		{[]string{"core", "ambassador", "argo"}, GatewayAmbassador, ""},
		{[]string{"core", "gateway", "argo"}, GatewayAPI, ""},
		{[]string{"core", "argo"}, GatewayNone, ""},
		{[]string{"ambassador", "core", "gateway"}, "", "components ambassador and gateway are each a gateway"},
	} {
		got, err := GatewayOf(c.components)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want one containing %q", c.components, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %q", c.components, got, err, c.want)
		}
	}
}

// TestGatewaySignInProxy: oauth2-proxy answers Traefik's ForwardAuth (proxy path, static 202,
// reverse proxy, identity headers) and takes its secrets from a Secret as files, never from its
// arguments.
func TestGatewaySignInProxy(t *testing.T) {
	objs := render(t, "gateway", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "oauth2-proxy", &d)
	c := d.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--upstream=static://202", "--reverse-proxy=true", "--set-xauthrequest=true", "--htpasswd-file=/etc/oauth2-proxy/htpasswd", "--htpasswd-user-group=admins"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("oauth2-proxy args %v lack %s", c.Args, want)
		}
	}
	for _, a := range c.Args {
		if strings.Contains(a, "kfdeploy-secret:") || strings.HasPrefix(a, "--cookie-secret=") || strings.HasPrefix(a, "--client-secret=") {
			t.Errorf("oauth2-proxy argument %q holds a secret", a)
		}
	}
	// Each secret file comes from a Secret's key that holds the generated value.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	secretKeys := map[string]string{} // path → secret/key
	for _, v := range d.Spec.Template.Spec.Volumes {
		dir, ok := mounts[v.Name]
		if !ok || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret == nil {
				continue
			}
			var sec corev1.Secret
			typed(t, objs, "Secret", src.Secret.Name, &sec)
			for key := range sec.StringData {
				secretKeys[dir+"/"+key] = src.Secret.Name + "/" + key
			}
			if sec.Annotations["kfdeploy.dev/htpasswd"] != "" {
				secretKeys[dir+"/htpasswd"] = src.Secret.Name + "/htpasswd"
			}
		}
	}
	for flag, want := range map[string]string{
		"--cookie-secret-file": "oauth2-proxy/cookie-secret",
		"--client-secret-file": "oauth2-proxy/client-secret",
		"--htpasswd-file":      "oauth2-proxy-htpasswd/htpasswd",
	} {
		i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, flag+"=") })
		if i < 0 {
			t.Errorf("oauth2-proxy has no %s", flag)
			continue
		}
		if got := secretKeys[strings.TrimPrefix(c.Args[i], flag+"=")]; got != want {
			t.Errorf("%s is %s, which comes from %q, want Secret key %s", flag, c.Args[i], got, want)
		}
	}
	var sec corev1.Secret
	typed(t, objs, "Secret", "oauth2-proxy", &sec)
	if sec.StringData["cookie-secret"] != placeholder("gateway", "cookieSecret") || sec.StringData["client-secret"] != placeholder("gateway", "oidcClientSecret") {
		t.Errorf("Secret oauth2-proxy holds %v, want the generated cookieSecret and oidcClientSecret", sec.StringData)
	}
	// Static users only: the sign-in page is ours, without the default provider's button.
	if !slices.Contains(c.Args, "--custom-templates-dir=/etc/oauth2-proxy-templates") {
		t.Errorf("static users only: oauth2-proxy args %v lack the template directory", c.Args)
	}
	page, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", "oauth2-proxy-templates").Object, "data", "sign_in.html")
	if !strings.Contains(page, `action="{{ .ProxyPrefix }}/sign_in"`) || strings.Contains(page, ".ProviderName") {
		t.Errorf("static users only: sign_in.html has no form or still the provider's button:\n%s", page)
	}
	htpasswd := find(t, objs, "Secret", "oauth2-proxy-htpasswd").GetAnnotations()
	if htpasswd["kfdeploy.dev/htpasswd"] != "gateway/htpasswd" || htpasswd["kfdeploy.dev/htpasswd-users"] != "admin" {
		t.Errorf("Secret oauth2-proxy-htpasswd annotations %v, want generate to fill it for user admin", htpasswd)
	}

	oidc := render(t, "gateway", map[string]any{"oidcIssuerURL": "https://idp.example.com", "staticUsers": []any{}, "allowedGroups": []any{"ml"}, "hostname": "kf.example.com"})
	typed(t, oidc, "Deployment", "oauth2-proxy", &d)
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--provider=oidc", "--oidc-issuer-url=https://idp.example.com", "--client-id=kubeflow", "--skip-jwt-bearer-tokens=true",
		"--skip-provider-button=true", "--email-domain=*", "--allowed-group=ml", "--redirect-url=https://kf.example.com/oauth2/callback", "--code-challenge-method=S256"} {
		if !slices.Contains(args, want) {
			t.Errorf("OIDC: oauth2-proxy args %v lack %s", args, want)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--custom-templates-dir") }) || kinds(oidc)["ConfigMap"] != 0 {
		t.Errorf("OIDC: oauth2-proxy's own page is replaced: %v", args)
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--htpasswd") }) || kinds(oidc)["Secret"] != 2 {
		t.Errorf("OIDC without static users still has an htpasswd file: %v", args)
	}
}

// TestGatewayTraefik: the entryPoints are the Gateway's listener ports, both providers watch the
// app namespace only and route to cluster IPs, the HTTPS listener serves the certificate kfdeploy
// issues, the Middlewares ask oauth2-proxy (the admins one with the admin group), and RBAC is
// namespaced but for the cluster-scoped kinds.
func TestGatewayTraefik(t *testing.T) {
	objs := render(t, "gateway", map[string]any{"adminGroup": "ml-admins"})
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "traefik", &d)
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{
		"--providers.kubernetesgateway=true", "--providers.kubernetesgateway.namespaces=kubeflow", "--providers.kubernetesgateway.nativeLBByDefault=true",
		"--providers.kubernetescrd=true", "--providers.kubernetescrd.namespaces=kubeflow", "--providers.kubernetescrd.nativeLBByDefault=true",
		"--providers.kubernetescrd.disableClusterScopeResources=true", "--providers.kubernetescrd.safeNaming=true", "--global.sendAnonymousUsage=false",
		"--entryPoints.web.http.aliasHeadersStrategy=delete", "--entryPoints.websecure.http.aliasHeadersStrategy=delete",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("traefik args %v lack %s", args, want)
		}
	}
	entryPoints := map[string]bool{}
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "--entryPoints."); ok {
			if _, addr, ok := strings.Cut(rest, ".address=:"); ok {
				entryPoints[addr] = true
			}
		}
	}
	gw := find(t, objs, "Gateway", "gateway")
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	protocols := map[string]string{}
	for _, l := range listeners {
		l := l.(map[string]any)
		protocols[fmt.Sprint(l["name"])] = fmt.Sprint(l["protocol"])
		if !entryPoints[fmt.Sprint(l["port"])] {
			t.Errorf("listener %v on port %v has no Traefik entryPoint of that port (%v)", l["name"], l["port"], entryPoints)
		}
		if l["protocol"] == "HTTPS" {
			refs, _, _ := unstructured.NestedSlice(l, "tls", "certificateRefs")
			if len(refs) != 1 || refs[0].(map[string]any)["name"] != "gateway-tls" {
				t.Errorf("HTTPS listener certificates %v, want Secret gateway-tls", refs)
			}
		}
	}
	if protocols["http"] != "HTTP" || protocols["https"] != "HTTPS" {
		t.Errorf("listeners %v, want http (HTTP) and https (HTTPS)", protocols)
	}
	if a := find(t, objs, "Secret", "gateway-tls").GetAnnotations(); a["kfdeploy.dev/certificate"] != "gateway/tls" {
		t.Errorf("Secret gateway-tls does not ask kfdeploy for a certificate: %v", a)
	}
	class, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName")
	if ctrl, _, _ := unstructured.NestedString(find(t, objs, "GatewayClass", class).Object, "spec", "controllerName"); ctrl != "traefik.io/gateway-controller" {
		t.Errorf("GatewayClass %s controller %q", class, ctrl)
	}
	for name, query := range map[string]string{"signin": "", "signin-admins": "?allowed_groups=ml-admins"} {
		fa, _, _ := unstructured.NestedMap(find(t, objs, "Middleware", name).Object, "spec", "forwardAuth")
		if fa["address"] != "http://oauth2-proxy.kubeflow.svc:4180/"+query || fa["trustForwardHeader"] != false {
			t.Errorf("Middleware %s: address %v, trustForwardHeader %v", name, fa["address"], fa["trustForwardHeader"])
		}
		if n, ok := fa["maxResponseBodySize"].(float64); !ok || n <= 0 {
			t.Errorf("Middleware %s: maxResponseBodySize %v, want a limit", name, fa["maxResponseBodySize"])
		}
		headers, _, _ := unstructured.NestedStringSlice(fa, "authResponseHeaders")
		if !slices.Equal(headers, []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username"}) {
			t.Errorf("Middleware %s passes %v", name, headers)
		}
	}
	var cr rbacv1.ClusterRole
	typed(t, objs, "ClusterRole", "kubeflow-traefik", &cr)
	for _, r := range cr.Rules {
		for _, res := range r.Resources {
			if res != "namespaces" && res != "gatewayclasses" && res != "gatewayclasses/status" {
				t.Errorf("ClusterRole grants %s cluster-wide; only cluster-scoped kinds belong there", res)
			}
		}
	}

	redirect := render(t, "gateway", map[string]any{"redirectPort": 30443})
	rules, _, _ := unstructured.NestedSlice(find(t, redirect, "HTTPRoute", "http-to-https").Object, "spec", "rules")
	filter := asSlice(rules[0].(map[string]any)["filters"])[0].(map[string]any)
	if port, _, _ := unstructured.NestedFieldNoCopy(filter, "requestRedirect", "port"); fmt.Sprint(port) != "30443" {
		t.Errorf("redirectPort 30443: redirect %v", filter)
	}

	for want, params := range map[string]map[string]any{
		"set oidcIssuerURL or staticUsers":  {"staticUsers": []any{}},
		"oidcIssuerURL must be an http(s)":  {"oidcIssuerURL": "idp.example.com"},
		"adminGroup must be one group name": {"adminGroup": "a,b"},
		"staticUsers must be names":         {"staticUsers": []any{"a:b"}},
		"nodePort needs serviceType":        {"serviceType": "ClusterIP", "nodePort": 30443},
		"oidcCodeChallengeMethod must be":   {"oidcCodeChallengeMethod": "S512"},
	} {
		if _, err := library().Render("gateway", params, goldenEnv(t, "gateway")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("params %v: error %v, want one saying %q", params, err, want)
		}
	}
}

// TestArgoBehindGatewayAPI: Traefik dials backends in plain HTTP unless a BackendTLSPolicy names
// the CA of their certificate, which Argo's self-signed one lacks: behind the gateway component
// the server speaks HTTP (probes too); behind Emissary it keeps HTTPS.
func TestArgoBehindGatewayAPI(t *testing.T) {
	for gateway, secure := range map[string]bool{GatewayAPI: false, GatewayAmbassador: true, GatewayNone: true} {
		var d appsv1.Deployment
		typed(t, renderFor(t, "argo", nil, gateway), "Deployment", "argo-server", &d)
		c := d.Spec.Template.Spec.Containers[0]
		scheme := corev1.URISchemeHTTPS
		if !secure {
			scheme = corev1.URISchemeHTTP
		}
		if slices.Contains(c.Args, "--secure=false") == secure || c.ReadinessProbe.HTTPGet.Scheme != scheme || c.LivenessProbe.HTTPGet.Scheme != scheme {
			t.Errorf("gateway %q: argo-server args %v, probe schemes %s and %s; want TLS %v", gateway, c.Args, c.ReadinessProbe.HTTPGet.Scheme, c.LivenessProbe.HTTPGet.Scheme, secure)
		}
	}
}
