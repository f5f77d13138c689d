package app

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// TestGenerateGatewayAPI: with the gateway component, generate renders the UIs' HTTPRoutes, keeps
// a password per static user in secrets.yaml and its bcrypt hash in the htpasswd Secret (only as
// a placeholder in the manifests), and a second generate changes nothing.
func TestGenerateGatewayAPI(t *testing.T) {
	dir := newTestApp(t, nil, "gateway", "centraldashboard")
	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	first := readTree(t, filepath.Join(dir, ManifestsDir))
	if !strings.Contains(first["centraldashboard.yaml"], "kind: HTTPRoute") {
		t.Error("centraldashboard renders no HTTPRoute in an app with the gateway component")
	}
	ph := secrets.Placeholder("gateway", "htpasswd")
	if !strings.Contains(first["gateway.yaml"], "htpasswd: "+ph) {
		t.Errorf("manifests/gateway.yaml does not hold the htpasswd placeholder %s", ph)
	}
	data, err := os.ReadFile(filepath.Join(dir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]string
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	password := values[secrets.HtpasswdPasswordKey("gateway", "htpasswd", "admin")]
	if len(password) < 32 {
		t.Fatalf("secrets.yaml holds %q as admin's password", password)
	}
	for name, content := range first {
		if strings.Contains(content, password) || strings.Contains(content, "$2a$") {
			t.Errorf("manifests/%s holds the password or its hash", name)
		}
	}

	if _, err := Generate(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if second := readTree(t, filepath.Join(dir, ManifestsDir)); !reflect.DeepEqual(first, second) {
		t.Error("a second generate changed manifests/")
	}
	again, err := os.ReadFile(filepath.Join(dir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Error("a second generate changed secrets.yaml (a new bcrypt salt?)")
	}

	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range loaded.Objects {
		if o.GetKind() != "Secret" || o.GetName() != "oauth2-proxy-htpasswd" {
			continue
		}
		file, _, _ := strings.Cut(o.Object["stringData"].(map[string]any)["htpasswd"].(string), "\n")
		user, hash, _ := strings.Cut(file, ":")
		if user != "admin" || bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
			t.Errorf("the applied htpasswd file %q is not admin's bcrypt hash of the stored password", file)
		}
		return
	}
	t.Error("Load returned no Secret oauth2-proxy-htpasswd")
}

func TestGenerateRefusesTwoGateways(t *testing.T) {
	dir := newTestApp(t, nil, "ambassador", "gateway")
	_, err := Generate(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "components ambassador and gateway are each a gateway") {
		t.Errorf("generate with ambassador and gateway: error %v, want one refusing the pair", err)
	}
}
