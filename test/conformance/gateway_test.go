//go:build conformance

package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// gatewayHost is the name by which the test's users reach the gateway: in its certificate, in
// oauth2-proxy's redirect URL, and the TLS server name the client verifies.
const gatewayHost = "kubeflow.example.test"

// identityHeaders are what oauth2-proxy answers a signed-in request with and Traefik's
// ForwardAuth copies onto it (the signin Middlewares' authResponseHeaders).
var identityHeaders = []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username"}

var (
	gatewaysGVR   = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	httpRoutesGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

// TestGateway runs the gateway component's data plane and sign-in for real: Traefik (Gateway API
// and CRD providers, with the rendered args, ServiceAccount and RBAC) in front of stand-in
// backends for every UI route the app renders, oauth2-proxy (rendered args and secret files)
// signing users in through mockoidc, the test's OIDC provider. A client that trusts only the
// app's CA, with a cookie jar, is sent to sign in, signs in, reaches every route with its
// identity (and not one it forges), is refused the admins' routes outside that group, is
// redirected from HTTP to HTTPS, and a program with the provider's ID token as a bearer token
// gets in without the cookie flow.
func TestGateway(t *testing.T) {
	oidcBin := binary(t, "mockoidc")
	oidcPort := freePortString(t)
	issuer := "http://127.0.0.1:" + oidcPort + "/oidc"
	var oidc *mockOIDC
	var clientSecret string
	g := startGateway(t, "gateway", [][3]string{
		{"gateway", "oidcIssuerURL", issuer},
		// OIDC users only: with static users too, oauth2-proxy shows its page (form and
		// provider button) instead of redirecting to the provider.
		{"gateway", "staticUsers", "[]"},
	}, func(ctx context.Context, dir string) {
		// The identity provider, with the client the app's secrets.yaml gave the gateway; up
		// before oauth2-proxy, which reads its discovery document at start.
		clientSecret = appSecret(t, dir, "gateway/oidcClientSecret")
		oidc = startMockOIDC(ctx, t, oidcBin, "127.0.0.1:"+oidcPort, "kubeflow", clientSecret)
	})

	t.Run("plain HTTP is redirected to HTTPS", func(t *testing.T) { g.checkHTTPRedirect(t) })

	for _, r := range g.routes {
		t.Run("without a session "+r.prefix+" redirects to sign in", func(t *testing.T) {
			resp := get(t, g.client(nil, false), "https://"+gatewayHost+r.prefix, nil)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, issuer+"/authorize?") {
				t.Errorf("GET %s without a session: %d Location %q, want 302 to %s/authorize", r.prefix, resp.StatusCode, loc, issuer)
			}
		})
	}

	alice := user{Email: "alice@example.com", Groups: []string{"ml"}}
	aliceClient := signIn(t, oidc, g.client, alice)
	bob := user{Email: "bob@example.com", Groups: []string{"ml", "admins"}}
	bobClient := signIn(t, oidc, g.client, bob)
	want := func(u user) map[string]string {
		// mockoidc's subject and preferred_username default to the email.
		return map[string]string{"X-Auth-Request-User": u.Email, "X-Auth-Request-Email": u.Email, "X-Auth-Request-Groups": strings.Join(u.Groups, ","), "X-Auth-Request-Preferred-Username": u.Email}
	}
	for _, r := range g.routes {
		t.Run("signed in "+r.prefix, func(t *testing.T) {
			// Alice: every route of any signed-in user, none of the admins'.
			if r.admins {
				if resp := get(t, aliceClient, "https://"+gatewayHost+r.prefix, forgedIdentity()); resp.StatusCode != http.StatusForbidden {
					t.Errorf("alice (groups ml) GET %s (admins only): %d, want 403", r.prefix, resp.StatusCode)
				}
			} else {
				g.checkIdentity(t, aliceClient, r, nil, alice.Email, want(alice))
			}
			// Bob, of the admins group: every route.
			g.checkIdentity(t, bobClient, r, nil, bob.Email, want(bob))
		})
	}

	t.Run("JupyterHub's sign-in asks oauth2-proxy about the request's own cookie, never trusts its headers", func(t *testing.T) {
		g.checkHubIdentitySource(t, aliceClient, alice.Email)
	})

	t.Run("a bearer token from the provider gets in without the cookie flow", func(t *testing.T) {
		carol := user{Email: "carol@example.com", Groups: []string{"ml", "admins"}}
		token := idToken(t, oidc, carol, clientSecret)
		for _, r := range g.routes {
			g.checkIdentity(t, g.client(nil, false), r, http.Header{"Authorization": {"Bearer " + token}}, carol.Email, want(carol))
		}
		// A token the provider did not sign falls back to the sign-in.
		resp := get(t, g.client(nil, false), "https://"+gatewayHost+g.routes[0].prefix, http.Header{"Authorization": {"Bearer " + forgeToken(token)}})
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s with a forged bearer token: 200, want a refusal or the sign-in", g.routes[0].prefix)
		}
	})
}

// TestGatewayStaticUsers runs the gateway as rendered by default, for a site without an
// identity provider: static users of an htpasswd file (user admin, password in secrets.yaml),
// all in the admins group, signing in on oauth2-proxy's form, or sending HTTP basic auth.
func TestGatewayStaticUsers(t *testing.T) {
	var password string
	g := startGateway(t, "gwstatic", nil, func(_ context.Context, dir string) {
		password = appSecret(t, dir, "gateway/htpasswd.password.admin")
	})

	t.Run("plain HTTP is redirected to HTTPS", func(t *testing.T) { g.checkHTTPRedirect(t) })

	start := "https://" + gatewayHost + g.routes[0].prefix
	t.Run("without a session the sign-in form answers", func(t *testing.T) {
		for _, r := range g.routes {
			resp := get(t, g.client(nil, false), "https://"+gatewayHost+r.prefix, nil)
			if resp.Header.Get("X-Stand-In") != "" || !strings.Contains(resp.body, `name="password"`) {
				t.Errorf("GET %s without a session: %d, want oauth2-proxy's sign-in form:\n%s", r.prefix, resp.StatusCode, resp.body)
			}
			// No button of the provider that oauth2-proxy configures by default (Google).
			if strings.Contains(resp.body, "Sign in with") {
				t.Errorf("GET %s without a session: the sign-in page offers a provider:\n%s", r.prefix, resp.body)
			}
		}
	})

	signInForm := func(t *testing.T, pw string) (*http.Client, *response) {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := g.client(jar, true)
		req, err := http.NewRequest(http.MethodPost, "https://"+gatewayHost+"/oauth2/sign_in",
			strings.NewReader(url.Values{"username": {"admin"}, "password": {pw}, "rd": {start}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST sign_in: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return c, &response{Response: resp, body: string(body)}
	}
	t.Run("a wrong password does not sign in", func(t *testing.T) {
		_, resp := signInForm(t, password+"x")
		if resp.Header.Get("X-Stand-In") != "" {
			t.Errorf("sign-in with a wrong password reached %s", resp.Request.URL)
		}
	})
	// Static users have no e-mail address nor preferred name: oauth2-proxy sends neither, and
	// the client's are dropped all the same.
	want := map[string]string{"X-Auth-Request-User": "admin", "X-Auth-Request-Email": "", "X-Auth-Request-Groups": "admins"}
	t.Run("signed in with the form, every route", func(t *testing.T) {
		c, resp := signInForm(t, password)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != start {
			t.Fatalf("sign-in ended at %s with %d, want 200 at %s:\n%s", resp.Request.URL, resp.StatusCode, start, resp.body)
		}
		for _, r := range g.routes {
			g.checkIdentity(t, c, r, nil, "admin", want)
		}
	})
	t.Run("basic auth, every route", func(t *testing.T) {
		for _, r := range g.routes {
			g.checkIdentity(t, g.client(nil, false), r, http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+password))}}, "admin", want)
		}
	})
}

// gatewayApp is an applied app with the gateway component in front of UIs, its programs running.
type gatewayApp struct {
	routes   []route
	backends map[string]*standIn
	client   func(jar http.CookieJar, follow bool) *http.Client
	e        *env
	ns, dir  string
}

// startGateway applies an app of the gateway and UIs whose routes it fronts (the central
// dashboard and JupyterHub for any signed-in user, Argo for the admins group) with the params,
// then calls beforeSignIn, runs oauth2-proxy and Traefik and stand-ins for the UIs, and waits
// until Traefik has programmed the Gateway and every route.
func startGateway(t *testing.T, prefix string, params [][3]string, beforeSignIn func(ctx context.Context, dir string)) *gatewayApp {
	t.Helper()
	traefikBin, proxyBin := binary(t, "traefik"), binary(t, "oauth2-proxy")
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	installGatewayCRDs(ctx, t, e)

	dir, ns := e.NewApp(t, prefix, "--components", "core,gateway,centraldashboard,jupyterhub,argo")
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() {
		for _, p := range e.h.Processes() {
			p.Stop(5 * time.Second)
		}
		e.Run(t, dir, "delete", "--purge", "--yes")
	})
	for _, kv := range append([][3]string{
		{"gateway", "hostname", gatewayHost},
		{"jupyterhub", "storageClass", `""`},
	}, params...) {
		e.MustRun(t, dir, "param", "set", kv[0], kv[1], kv[2])
	}
	e.MustRun(t, dir, "generate")
	objs := e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests"))
	for _, c := range e2eutil.AppClaims(t, objs, ns) {
		e.CreateReservedPV(t, c)
	}
	e.MustRun(t, dir, "apply")
	routes := uiRoutes(t, objs)
	beforeSignIn(ctx, dir)

	// oauth2-proxy as rendered (its secret files, the issuer's discovery at start), moved off
	// the wildcard port 4180 to a free loopback port: the oauth2-proxy Service (ClusterIP:4180,
	// which the Middlewares' address names) is forwarded there.
	proxyPort := freePortString(t)
	proxy, err := e.h.Start(ctx, harness.Program{
		Binary: proxyBin, Namespace: ns, Deployment: "oauth2-proxy",
		Args:  func(a []string) []string { return harness.SetFlag(a, "--http-address", "127.0.0.1:"+proxyPort) },
		Ports: map[int32]int32{4180: port32(t, proxyPort)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.WaitPort(ctx, int(port32(t, proxyPort))); err != nil {
		t.Fatalf("oauth2-proxy: %v\n%s", err, proxy.Log())
	}

	// Traefik as rendered except where it listens. The listener ports of the Gateway (8000,
	// 8443) must stay the entryPoints' ports (Traefik binds a listener to the entryPoint whose
	// address ends in its port), but on 127.0.0.1 instead of the wildcard address, which would
	// hold those ports on every loopback address, ClusterIPs of other tests' Services included;
	// the gateway Service (ClusterIP:443 and :80) is forwarded to them. The ping entryPoint
	// (8080, held by other programs of this machine) moves to a free port.
	pingPort := freePortString(t)
	traefik, err := e.h.Start(ctx, harness.Program{
		Binary: traefikBin, Namespace: ns, Deployment: "traefik",
		Args: func(a []string) []string {
			a = harness.SetFlag(a, "--entryPoints.web.address", "127.0.0.1:8000")
			a = harness.SetFlag(a, "--entryPoints.websecure.address", "127.0.0.1:8443")
			return harness.SetFlag(a, "--entryPoints.traefik.address", "127.0.0.1:"+pingPort)
		},
		ExtraArgs: []string{"--log.level=DEBUG"},
		Ports:     map[int32]int32{8080: port32(t, pingPort)},
	})
	if err != nil {
		t.Fatal(err)
	}
	e2eutil.Eventually(t, time.Minute, "Traefik answers /ping", func(ctx context.Context) (bool, error) {
		return httpStatus(ctx, "http://127.0.0.1:"+pingPort+"/ping") == http.StatusOK, nil
	})

	// Stand-ins for the UIs: Traefik sends each route to its Service's ClusterIP and port
	// (nativeLB, as rendered), where the harness listens and forwards to the stand-in. The UIs'
	// own Deployments are never run.
	backends := map[string]*standIn{}
	for _, r := range routes {
		if backends[r.backend()] != nil {
			continue
		}
		b := startStandIn(t, r.backend())
		backends[r.backend()] = b
		if err := e.h.Forward(ctx, ns, r.service, r.port, b.addr); err != nil {
			t.Fatal(err)
		}
	}

	waitGatewayProgrammed(t, e, ns, traefik)
	t.Cleanup(func() {
		checkTraefikWarnings(t, traefik)
		if t.Failed() {
			t.Logf("oauth2-proxy log:\n%s\ntraefik log:\n%s", proxy.Log(), traefik.Log())
		}
	})

	gw, err := e.Kube.CoreV1().Services(ns).Get(ctx, "gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM([]byte(e.MustRun(t, dir, "ca").Stdout)) {
		t.Fatal("kfdeploy ca printed no PEM certificate")
	}
	g := &gatewayApp{routes: routes, backends: backends, e: e, ns: ns, dir: dir, client: func(jar http.CookieJar, follow bool) *http.Client {
		return gatewayClient(ca, gw.Spec.ClusterIP, jar, follow)
	}}
	g.waitServing(t, traefik)
	return g
}

// checkHubIdentitySource makes the requests JupyterHub's authenticator makes
// (jsonnet/components/jupyterhub/kfdeploy_gateway_auth.py), to the address the rendered hub
// configuration names, against the real oauth2-proxy: the signed-in client's session cookie
// alone yields the user; identity headers without a session yield nobody.
func (g *gatewayApp) checkHubIdentitySource(t *testing.T, signedIn *http.Client, email string) {
	t.Helper()
	ctx := context.Background()
	cm, err := g.e.Kube.CoreV1().ConfigMaps(g.ns).Get(ctx, "jupyterhub-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var settings struct {
		SignIn struct {
			Mode    string `json:"mode"`
			AuthURL string `json:"authURL"`
		} `json:"signIn"`
	}
	if err := json.Unmarshal([]byte(cm.Data["settings.json"]), &settings); err != nil || settings.SignIn.Mode != "gateway" {
		t.Fatalf("hub settings: sign-in %+v (%v), want the gateway's", settings.SignIn, err)
	}
	// No cluster DNS here: the Service's name is dialled at its ClusterIP (the harness forwards it).
	u, err := url.Parse(settings.SignIn.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	svcName, _, _ := strings.Cut(u.Hostname(), ".")
	svc, err := g.e.Kube.CoreV1().Services(g.ns).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the hub's sign-in address %s names no Service of the app: %v", settings.SignIn.AuthURL, err)
	}
	u.Host = net.JoinHostPort(svc.Spec.ClusterIP, u.Port())
	ask := func(h http.Header) (int, http.Header) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	var cookies []string
	for _, c := range signedIn.Jar.Cookies(&url.URL{Scheme: "https", Host: gatewayHost, Path: "/hub/"}) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) == 0 {
		t.Fatal("the signed-in client holds no cookie for /hub/")
	}
	if code, h := ask(http.Header{"Cookie": {strings.Join(cookies, "; ")}}); code != http.StatusAccepted || h.Get("X-Auth-Request-Email") != email {
		t.Errorf("%s with the session cookie: %d, X-Auth-Request-Email %q; want 202 and %s", u, code, h.Get("X-Auth-Request-Email"), email)
	}
	if code, h := ask(forgedIdentity()); code != http.StatusUnauthorized || h.Get("X-Auth-Request-Email") != "" {
		t.Errorf("%s with identity headers and no session: %d, X-Auth-Request-Email %q; want 401 and nobody", u, code, h.Get("X-Auth-Request-Email"))
	}
}

// waitServing waits until Traefik serves the app's certificate and every route. It writes the
// Gateway's and routes' status before its new configuration is live (measured: a request right
// after gets its default self-signed certificate, or 404 in cleartext).
func (g *gatewayApp) waitServing(t *testing.T, traefik *harness.Process) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		last = ""
		c := g.client(nil, false)
		status := func(u string) (int, error) {
			resp, err := c.Get(u)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if code, err := status("http://" + gatewayHost + "/"); err != nil || code != http.StatusMovedPermanently {
			last = fmt.Sprintf("cleartext GET /: %d %v", code, err)
		}
		for _, r := range g.routes {
			if code, err := status("https://" + gatewayHost + r.prefix); err != nil || code == http.StatusNotFound {
				last = fmt.Sprintf("GET %s: %d %v", r.prefix, code, err)
			}
		}
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway does not serve the app's routes 30s after programming them: %s\ntraefik log:\n%s", last, traefik.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ansiEscape matches the colour codes of Traefik's console log.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// checkTraefikWarnings fails on each warning or error Traefik logged about the rendered
// configuration (each one so far named an option the component had to set), except the notice
// on encoded characters in paths, which Traefik logs whenever they are allowed, as they are by
// default (the component keeps the default: refusing them might break UIs whose paths carry
// encoded slashes, which no test here shows either way).
func checkTraefikWarnings(t *testing.T, traefik *harness.Process) {
	t.Helper()
	for _, l := range traefik.Lines() {
		l = ansiEscape.ReplaceAllString(l, "")
		if (strings.Contains(l, " WRN ") || strings.Contains(l, " ERR ")) && !strings.Contains(l, "encoded characters in the request path") {
			t.Errorf("traefik: %s", l)
		}
	}
}

// checkHTTPRedirect: a cleartext request gets a permanent redirect to the same URL in HTTPS.
func (g *gatewayApp) checkHTTPRedirect(t *testing.T) {
	resp := get(t, g.client(nil, false), "http://"+gatewayHost+"/hub/home?x=1", nil)
	want := "https://" + gatewayHost + "/hub/home?x=1"
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("GET http://%s/hub/home?x=1: %d Location %q, want 301 to %s", gatewayHost, resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// forgedIdentity is what a client would send to pass for someone else: the identity headers,
// and names that backends deriving variable names from header names (WSGI, CGI) read as them.
func forgedIdentity() http.Header {
	h := http.Header{}
	for _, k := range identityHeaders {
		h.Set(k, "mallory")
		h[strings.ReplaceAll(k, "-", "_")] = []string{"mallory"}
		h[strings.ReplaceAll(k, "-", ".")] = []string{"mallory"}
	}
	return h
}

// headerAlias is the header name that name stands for where '_' and '.' read as '-'.
var headerAlias = strings.NewReplacer("_", "-", ".", "-")

// installGatewayCRDs applies the Gateway API v1.6.1 standard-channel CRDs and Traefik's CRDs
// from the Go module cache of test/tools/traefik (the versions Traefik is built against).
// Traefik's informers wait forever for a kind the API server does not serve, so all of them.
// They are cluster-wide objects that other software installs too: the test leaves them.
func installGatewayCRDs(ctx context.Context, t *testing.T, e *env) {
	t.Helper()
	modDir := func(mod string) string {
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", mod)
		cmd.Dir = filepath.Join(toolsDir, "traefik")
		// As scripts/harness.sh builds it: the module cache then holds both modules.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			t.Fatalf("find module %s of test/tools/traefik in the module cache (go list -m; scripts/harness.sh build traefik downloads it): %q %v", mod, dir, err)
		}
		return dir
	}
	files, err := filepath.Glob(filepath.Join(modDir("sigs.k8s.io/gateway-api"), "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Gateway API standard CRDs in the module cache (%v)", err)
	}
	files = append(files, filepath.Join(modDir("github.com/traefik/traefik/v3"), "docs", "content", "reference", "dynamic-configuration", "kubernetes-crd-definition-v1.yml"))
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Decode(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			// The standard channel also ships a ValidatingAdmissionPolicy against downgrades.
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := e.Dyn.Resource(crds).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "kfdeploy-conformance", Force: true}); err != nil {
				t.Fatalf("apply CRD %s from %s: %v", o.GetName(), f, err)
			}
			names = append(names, o.GetName())
		}
	}
	for _, n := range names {
		e2eutil.Eventually(t, time.Minute, "CRD "+n+" established", func(ctx context.Context) (bool, error) {
			o, err := e.Dyn.Resource(crds).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
	}
	t.Logf("installed %d CRDs: %s", len(names), strings.Join(names, ", "))
}

// route is one UI route of the app's HTTPS listener.
type route struct {
	name, prefix, service string
	port                  int32
	// rewrite replaces the prefix before the backend sees the path ("" keeps it).
	rewrite string
	admins  bool
}

func (r route) backend() string { return r.service + ":" + strconv.Itoa(int(r.port)) }

// uiRoutes lists the rendered HTTPRoutes of the HTTPS listener behind a sign-in Middleware:
// every route but the sign-in flow itself, which the test checks has no other.
func uiRoutes(t *testing.T, objs []*unstructured.Unstructured) []route {
	t.Helper()
	var routes []route
	for _, o := range e2eutil.ObjectsOfKind(objs, "gateway.networking.k8s.io", "HTTPRoute") {
		var spec struct {
			ParentRefs []struct {
				SectionName string `json:"sectionName"`
			} `json:"parentRefs"`
			Rules []struct {
				Matches []struct {
					Path struct {
						Value string `json:"value"`
					} `json:"path"`
				} `json:"matches"`
				Filters []struct {
					Type         string `json:"type"`
					ExtensionRef struct {
						Name string `json:"name"`
					} `json:"extensionRef"`
					URLRewrite struct {
						Path struct {
							ReplacePrefixMatch string `json:"replacePrefixMatch"`
						} `json:"path"`
					} `json:"urlRewrite"`
				} `json:"filters"`
				BackendRefs []struct {
					Name string `json:"name"`
					Port int32  `json:"port"`
				} `json:"backendRefs"`
			} `json:"rules"`
		}
		raw, _, _ := unstructured.NestedMap(o.Object, "spec")
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &spec); err != nil {
			t.Fatalf("HTTPRoute %s: %v", o.GetName(), err)
		}
		if len(spec.ParentRefs) != 1 || spec.ParentRefs[0].SectionName != "https" {
			continue // the cleartext listener's redirect
		}
		for _, rule := range spec.Rules {
			if len(rule.Matches) != 1 || len(rule.BackendRefs) != 1 {
				t.Fatalf("HTTPRoute %s: a rule with %d matches and %d backends, want one each", o.GetName(), len(rule.Matches), len(rule.BackendRefs))
			}
			r := route{name: o.GetName(), prefix: rule.Matches[0].Path.Value, service: rule.BackendRefs[0].Name, port: rule.BackendRefs[0].Port}
			signIn := ""
			for _, f := range rule.Filters {
				switch f.Type {
				case "ExtensionRef":
					signIn = f.ExtensionRef.Name
				case "URLRewrite":
					r.rewrite = f.URLRewrite.Path.ReplacePrefixMatch
				}
			}
			switch signIn {
			case "signin":
			case "signin-admins":
				r.admins = true
			case "":
				if r.prefix != "/oauth2/" {
					t.Errorf("HTTPRoute %s (%s) has no sign-in Middleware", o.GetName(), r.prefix)
				}
				continue
			default:
				t.Fatalf("HTTPRoute %s: unknown Middleware %s", o.GetName(), signIn)
			}
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		t.Fatal("the app renders no UI routes")
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].prefix < routes[j].prefix })
	for _, r := range routes {
		t.Logf("route %s %s → %s:%d (admins only: %v)", r.name, r.prefix, r.service, r.port, r.admins)
	}
	return routes
}

// waitGatewayProgrammed waits until Traefik reports the Gateway programmed and every HTTPRoute
// of ns accepted with its references resolved (Middlewares and backend Services).
func waitGatewayProgrammed(t *testing.T, e *env, ns string, traefik *harness.Process) {
	t.Helper()
	cond := func(conds []any, typ string) bool {
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == typ && m["status"] == "True" {
				return true
			}
		}
		return false
	}
	var last string
	ok := func(ctx context.Context) (bool, error) {
		gw, err := e.Dyn.Resource(gatewaysGVR).Namespace(ns).Get(ctx, "gateway", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
		if !cond(conds, "Programmed") {
			last = fmt.Sprintf("Gateway status %v", gw.Object["status"])
			return false, nil
		}
		l, err := e.Dyn.Resource(httpRoutesGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, r := range l.Items {
			parents, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
			if len(parents) == 0 {
				last = "HTTPRoute " + r.GetName() + " has no status"
				return false, nil
			}
			for _, p := range parents {
				m, _ := p.(map[string]any)
				conds, _, _ := unstructured.NestedSlice(m, "conditions")
				if !cond(conds, "Accepted") || !cond(conds, "ResolvedRefs") {
					last = fmt.Sprintf("HTTPRoute %s status %v", r.GetName(), m)
					return false, nil
				}
			}
		}
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		if done, _ := ok(ctx); done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Gateway and routes not programmed within 90s: %s\ntraefik log:\n%s", last, traefik.Log())
		case <-time.After(time.Second):
		}
	}
}

// gatewayClient is a browser of the gateway: it trusts only the app's CA, verifies the server
// name gatewayHost, and dials gatewayHost at the gateway Service's ClusterIP (the harness
// forwards its ports 443 and 80 to Traefik), everything else (the identity provider) as is.
func gatewayClient(ca *x509.CertPool, clusterIP string, jar http.CookieJar, follow bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == gatewayHost {
				addr = net.JoinHostPort(clusterIP, port)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// get sends GET with the headers and returns the response with its body read.
func get(t *testing.T, c *http.Client, u string, h http.Header) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return &response{Response: resp, body: string(body)}
}

type response struct {
	*http.Response
	body string
}

// httpStatus is the status of GET u, 0 when it cannot be had.
func httpStatus(ctx context.Context, u string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// standIn is a UI backend on loopback that answers every request with its id and the path it
// got, and records the requests' headers by request id.
type standIn struct {
	id, addr string
	mu       sync.Mutex
	seen     map[string]http.Header // by the X-Test-Request the test sends
	paths    map[string]string
}

func startStandIn(t *testing.T, id string) *standIn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &standIn{id: id, addr: l.Addr().String(), seen: map[string]http.Header{}, paths: map[string]string{}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := strconv.FormatInt(time.Now().UnixNano(), 36)
		s.mu.Lock()
		s.seen[n] = r.Header.Clone()
		s.paths[n] = r.URL.Path
		s.mu.Unlock()
		w.Header().Set("X-Stand-In", s.id)
		w.Header().Set("X-Stand-In-Request", n)
		fmt.Fprintf(w, "stand-in %s: %s\n", s.id, r.URL.Path)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// request returns the headers and path of the request the response answered.
func (s *standIn) request(resp *response) (http.Header, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := resp.Header.Get("X-Stand-In-Request")
	h, ok := s.seen[n]
	return h, s.paths[n], ok
}

// checkIdentity: GET of the route's prefix with c and the headers, and with forged identity
// headers, answers 200 from the route's stand-in, which got the identity want from the sign-in
// (never the client's) and the path as the route rewrites it.
func (g *gatewayApp) checkIdentity(t *testing.T, c *http.Client, r route, h http.Header, who string, want map[string]string) {
	t.Helper()
	b := g.backends[r.backend()]
	headers := forgedIdentity()
	for k, v := range h {
		headers[k] = v
	}
	resp := get(t, c, "https://"+gatewayHost+r.prefix, headers)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Stand-In") != b.id {
		t.Errorf("%s GET %s: %d from %q, want 200 from stand-in %s\n%s", who, r.prefix, resp.StatusCode, resp.Header.Get("X-Stand-In"), b.id, resp.body)
		return
	}
	got, path, ok := b.request(resp)
	if !ok {
		t.Errorf("%s GET %s: the stand-in has no record of the request", who, r.prefix)
		return
	}
	// The test asks for the prefix itself, which a rewrite replaces whole.
	wantPath := r.prefix
	if r.rewrite != "" {
		wantPath = r.rewrite
	}
	if path != wantPath {
		t.Errorf("%s GET %s: the backend got path %q, want %q", who, r.prefix, path, wantPath)
	}
	for name := range got {
		if alias := http.CanonicalHeaderKey(headerAlias.Replace(name)); alias != name && slices.Contains(identityHeaders, alias) {
			t.Errorf("%s GET %s: the backend got %s %q, which a WSGI or CGI backend reads as %s", who, r.prefix, name, got[name], alias)
		}
	}
	for _, k := range identityHeaders {
		var wantV []string
		if want[k] != "" {
			wantV = []string{want[k]}
		}
		if v := got.Values(k); !slices.Equal(v, wantV) {
			t.Errorf("%s GET %s: the backend got %s %q, want %q", who, r.prefix, k, v, wantV)
		}
	}
}

// user is a user of the identity provider (mockoidc's queue).
type user struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
}

// mockOIDC is the running identity provider.
type mockOIDC struct {
	issuer, base string
}

// startMockOIDC runs mockoidc on addr for the client and waits for its config line.
func startMockOIDC(ctx context.Context, t *testing.T, bin, addr, clientID, clientSecret string) *mockOIDC {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "-listen", addr, "-client-id", clientID, "-client-secret", clientSecret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mockoidc: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logMu.Lock()
		t.Logf("mockoidc log:\n%s", logBuf.String())
		logMu.Unlock()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "mockoidc: config ") {
				lines <- strings.TrimPrefix(l, "mockoidc: config ")
			}
		}
	}()
	var cfg struct {
		Issuer string `json:"issuer"`
	}
	select {
	case l := <-lines:
		if err := json.Unmarshal([]byte(l), &cfg); err != nil {
			t.Fatalf("mockoidc config %q: %v", l, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mockoidc printed no config within 30s")
	}
	return &mockOIDC{issuer: cfg.Issuer, base: "http://" + addr}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// queue makes u the user of the next sign-in.
func (m *mockOIDC) queue(t *testing.T, u user) {
	t.Helper()
	body, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(m.base+"/mockoidc/users", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("queue user %s: %v", u.Email, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("queue user %s: %s", u.Email, resp.Status)
	}
}

// signIn signs u in as a browser does: the first request is sent to the provider, which
// (with u queued) sends it back to the gateway's callback, which sets the session cookie and
// returns to the page first asked for. It returns a client with that session.
func signIn(t *testing.T, m *mockOIDC, newClient func(http.CookieJar, bool) *http.Client, u user) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.queue(t, u)
	start := "https://" + gatewayHost + "/hub/start?x=1"
	resp := get(t, newClient(jar, false), start, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, m.issuer+"/authorize?") {
		t.Fatalf("%s: GET %s: %d Location %q, want 302 to the provider", u.Email, start, resp.StatusCode, loc)
	}
	follow := newClient(jar, true)
	resp = get(t, follow, resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != start {
		t.Fatalf("%s: signing in ended at %s with %d, want 200 at %s:\n%s", u.Email, resp.Request.URL, resp.StatusCode, start, resp.body)
	}
	t.Logf("%s signed in; the browser is back at %s", u.Email, resp.Request.URL)
	return follow
}

// idToken gets an ID token for u from the provider by the authorization code flow, as a CLI
// signing in would.
func idToken(t *testing.T, m *mockOIDC, u user, clientSecret string) string {
	t.Helper()
	m.queue(t, u)
	redirect := "https://" + gatewayHost + "/oauth2/callback"
	q := url.Values{"client_id": {"kubeflow"}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email profile groups"}, "state": {"cli-state-123456"}, "nonce": {"cli-nonce-123456"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := c.Get(m.issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d Location %q, want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(m.issuer+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}, "client_id": {"kubeflow"}, "client_secret": {clientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		t.Fatalf("token: %s, no id_token (%v)", resp.Status, err)
	}
	return tok.IDToken
}

// forgeToken changes the token's signature, so that it no longer verifies.
func forgeToken(tok string) string {
	i := strings.LastIndex(tok, ".")
	sig := []byte(tok[i+1:])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	return tok[:i+1] + string(sig)
}

// appSecret reads one value of the app's secrets.yaml.
func appSecret(t *testing.T, dir, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "secrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("secrets.yaml: %v", err)
	}
	v, ok := m[key]
	if !ok {
		t.Fatalf("secrets.yaml has no %s", key)
	}
	return v
}
