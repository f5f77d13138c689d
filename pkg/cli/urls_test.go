package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/kfdeploy/kfdeploy/pkg/app"
)

func TestWriteURLsLastLines(t *testing.T) {
	u := &app.URLs{
		Base:   "https://10.0.1.11:30859",
		Others: []string{"https://10.0.1.12:30859"},
		UIs: []app.UIURL{
			{UI: "Central dashboard", URL: "https://10.0.1.11:30859/", SignIn: "none", Access: "read-only"},
			{UI: "JupyterHub", URL: "https://10.0.1.11:30859/hub/", SignIn: "password", Access: "read-write"},
		},
	}
	var b bytes.Buffer
	if err := writeURLs(&b, u); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	last := lines[len(lines)-2:]
	if !strings.Contains(last[0], "https://10.0.1.11:30859/ ") || !strings.Contains(last[0], "sign-in: none (read-only)") ||
		!strings.Contains(last[1], "JupyterHub") || !strings.Contains(last[1], "https://10.0.1.11:30859/hub/") || !strings.Contains(last[1], "sign-in: password") {
		t.Errorf("the last lines are not the UIs' URLs:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "also answers at: https://10.0.1.12:30859") {
		t.Errorf("other addresses missing:\n%s", b.String())
	}

	// The gateway's sign-in note comes before the URLs, which stay the last lines.
	b.Reset()
	u.SignInNote = "static users admin sign in with the passwords in secrets.yaml"
	if err := writeURLs(&b, u); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if !strings.Contains(b.String(), "Gateway sign-in: "+u.SignInNote) || !strings.Contains(lines[len(lines)-1], "JupyterHub") {
		t.Errorf("sign-in note missing, or not before the URLs:\n%s", b.String())
	}

	b.Reset()
	if err := writeURLs(&b, &app.URLs{Base: "https://localhost:8443", PortForward: "kubectl -n ml port-forward svc/ambassador 8443:443"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "kubectl -n ml port-forward svc/ambassador 8443:443") {
		t.Errorf("a cluster-only gateway must say how to reach it:\n%s", b.String())
	}
}

func TestStatusDocumentURLs(t *testing.T) {
	doc, keys := jsonKeys(t, statusDocument{App: "a", Namespace: "n", URLs: &app.URLs{
		Base: "https://192.0.2.10",
		UIs:  []app.UIURL{{UI: "JupyterHub", URL: "https://192.0.2.10/hub/", SignIn: "password", Access: "read-write"}},
	}})
	if want := sortedCopy("app", "namespace", "objects", "pods", "urls"); !reflect.DeepEqual(keys, want) {
		t.Errorf("status document keys %v, want %v", keys, want)
	}
	urls := doc["urls"].(map[string]any)
	ui := urls["uis"].([]any)[0].(map[string]any)
	if urls["base"] != "https://192.0.2.10" || ui["url"] != "https://192.0.2.10/hub/" || ui["signIn"] != "password" || ui["ui"] != "JupyterHub" {
		t.Errorf("urls %v", urls)
	}
}
