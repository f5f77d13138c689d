package cli

import (
	"strings"
	"testing"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

func secret(data map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"}, "data": data}
}

func TestRedactSecretPairShowsChangesNotValues(t *testing.T) {
	before := secret(map[string]any{"same": "c2FtZQ==", "changed": "b2xk", "removed": "Z29uZQ=="})
	after := secret(map[string]any{"same": "c2FtZQ==", "changed": "bmV3", "added": "YWRk"})
	redactSecretPair(before, after)
	text := unified("ns/Secret/db", "ns/Secret/db", before, after)
	for _, value := range []string{"c2FtZQ==", "b2xk", "bmV3", "Z29uZQ==", "YWRk"} {
		if strings.Contains(text, value) {
			t.Errorf("diff shows the secret value %s:\n%s", value, text)
		}
	}
	for _, want := range []string{"-  changed: '*** (before)'", "+  changed: '*** (after)'", "+  added: '***'", "-  removed: '***'"} {
		if !strings.Contains(text, want) {
			t.Errorf("diff lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "+  same") || strings.Contains(text, "-  same") {
		t.Errorf("an unchanged key appears as a change:\n%s", text)
	}
}

func TestDiffTextRedactsEveryChangeAndKeepsTheData(t *testing.T) {
	live := secret(map[string]any{"password": "b2xk"})
	desired := secret(map[string]any{"password": "bmV3"})
	for _, d := range []engine.ObjectDiff{
		{ID: "ns/Secret/db", Change: engine.ChangeUpdate, Live: live, Desired: desired},
		{ID: "ns/Secret/db", Change: engine.ChangeCreate, Desired: desired},
		{ID: "ns/Secret/db", Change: engine.ChangePrune, Live: live},
	} {
		text := diffText(d)
		if text == "" || strings.Contains(text, "b2xk") || strings.Contains(text, "bmV3") {
			t.Errorf("%s: diff %q is empty or shows a secret value", d.Change, text)
		}
	}
	if live["data"].(map[string]any)["password"] != "b2xk" {
		t.Error("diffText changed the report's data")
	}
	if text := unified("a", "a", live, secret(map[string]any{"password": "b2xk"})); text != "" {
		t.Errorf("equal objects give a diff:\n%s", text)
	}
	if text := diffText(engine.ObjectDiff{ID: "ns/Secret/db", Change: engine.ChangeNone, Live: live, Desired: live}); text != "" {
		t.Errorf("an unchanged object has a diff: %q", text)
	}
}
