package render

import (
	"html/template"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// signInPageData is what oauth2-proxy hands its sign-in template
// (pkg/app/pagewriter/sign_in_page.go@v7.15.6, WriteSignInPage).
type signInPageData struct {
	ProviderName  string
	SignInMessage template.HTML
	StatusCode    int
	CustomLogin   bool
	Redirect      string
	Version       string
	ProxyPrefix   string
	Footer        template.HTML
	LogoData      template.HTML
}

// executeSignInPage runs the page as oauth2-proxy does: html/template with its two functions,
// the template named after its file (templates.go@v7.15.6, loadTemplates).
func executeSignInPage(t *testing.T, page string, data signInPageData) string {
	t.Helper()
	tmpl, err := template.New("sign_in.html").Funcs(template.FuncMap{"ToUpper": strings.ToUpper, "ToLower": strings.ToLower}).Parse(page)
	if err != nil {
		t.Fatalf("sign_in.html does not parse: %v", err)
	}
	var out strings.Builder
	if err := tmpl.ExecuteTemplate(&out, "sign_in.html", data); err != nil {
		t.Fatalf("sign_in.html: %v", err)
	}
	return out.String()
}

// TestGatewayStaticUsersSignInPage: with static users only, oauth2-proxy serves the component's
// sign-in page, a form for the htpasswd users without the button of a provider the app has not;
// with an identity provider, oauth2-proxy's own page (its button, and the form for static users).
func TestGatewayStaticUsersSignInPage(t *testing.T) {
	objs := render(t, "gateway", nil)
	var d appsv1.Deployment
	typed(t, objs, "Deployment", "oauth2-proxy", &d)
	pod := d.Spec.Template.Spec
	var dir string
	for _, a := range pod.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--custom-templates-dir="); ok {
			dir = v
		}
	}
	if dir == "" {
		t.Fatalf("static users only: oauth2-proxy args %v lack --custom-templates-dir", pod.Containers[0].Args)
	}
	// The directory is the mount of the ConfigMap that holds the page.
	var cmName string
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		t.Fatalf("no ConfigMap volume is mounted at %s", dir)
	}
	var cm corev1.ConfigMap
	typed(t, objs, "ConfigMap", cmName, &cm)
	page, ok := cm.Data["sign_in.html"]
	if !ok {
		t.Fatalf("ConfigMap %s has no sign_in.html", cmName)
	}
	if d.Spec.Template.Annotations["kfdeploy.dev/config-hash"] == "" {
		t.Error("oauth2-proxy pods are not restarted when the page changes (no config-hash annotation)")
	}

	data := signInPageData{ProviderName: "Google", StatusCode: 200, CustomLogin: true, Redirect: "/katib/?a=1&b=2", ProxyPrefix: "/oauth2", Version: "v7.15.6"}
	html := executeSignInPage(t, page, data)
	for _, want := range []string{
		`<form method="POST" action="/oauth2/sign_in">`,
		`name="rd" value="/katib/?a=1&amp;b=2"`, // escaped by html/template
		`name="username"`, `name="password"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("sign-in page lacks %s:\n%s", want, html)
		}
	}
	for _, unwanted := range []string{"Sign in with", "Google", "/oauth2/start", "Wrong user name"} {
		if strings.Contains(html, unwanted) {
			t.Errorf("sign-in page shows %q:\n%s", unwanted, html)
		}
	}
	data.StatusCode = 401
	if html := executeSignInPage(t, page, data); !strings.Contains(html, "Wrong user name or password") {
		t.Errorf("a refused password is not said:\n%s", html)
	}

	// With an identity provider: oauth2-proxy's own page, no ConfigMap.
	objs = render(t, "gateway", map[string]any{"oidcIssuerURL": "https://idp.example.com"})
	typed(t, objs, "Deployment", "oauth2-proxy", &d)
	if slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "--custom-templates-dir") }) {
		t.Error("with an identity provider, oauth2-proxy should serve its own page with the provider's button")
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == cmName {
			t.Errorf("ConfigMap %s rendered with an identity provider", cmName)
		}
	}
}

// TestGatewaySignInNote: the gateway Service tells kfdeploy's URL list who signs in and how.
func TestGatewaySignInNote(t *testing.T) {
	for _, c := range []struct {
		params map[string]any
		want   []string
	}{
		{nil, []string{"static users admin sign in with the passwords in secrets.yaml (gateway/htpasswd.password.NAME)"}},
		{map[string]any{"oidcIssuerURL": "https://idp.example.com", "staticUsers": []any{}}, []string{"users sign in at https://idp.example.com"}},
		{map[string]any{"oidcIssuerURL": "https://idp.example.com", "staticUsers": []any{"ops", "root"}}, []string{"users sign in at https://idp.example.com", "static users ops, root sign in"}},
	} {
		svc := find(t, render(t, "gateway", c.params), "Service", "gateway")
		a := svc.GetAnnotations()
		if a["kfdeploy.dev/gateway-sign-in"] == "" {
			t.Errorf("%v: gateway Service lacks kfdeploy.dev/gateway-sign-in", c.params)
		}
		for _, w := range c.want {
			if !strings.Contains(a["kfdeploy.dev/gateway-sign-in-note"], w) {
				t.Errorf("%v: sign-in note %q lacks %q", c.params, a["kfdeploy.dev/gateway-sign-in-note"], w)
			}
		}
	}
}
