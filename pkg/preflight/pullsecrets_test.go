package preflight

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kfdeploy/kfdeploy/pkg/config"
)

// TestPullSecretsCheck: a pull Secret of app.yaml that the namespace lacks fails, naming it and
// how to create it; one of a type the kubelet does not read fails; a present one and one made
// from a file pass.
func TestPullSecretsCheck(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "kf"}, Type: corev1.SecretTypeDockerConfigJson},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "kf"}, Type: corev1.SecretTypeOpaque},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}, Type: corev1.SecretTypeDockerConfigJson},
	)
	e := testEnv(cs)
	e.opts.App.Spec.Images = &config.Images{PullSecrets: []config.PullSecret{
		{Name: "regcred", Line: 10}, {Name: "elsewhere", Line: 11}, {Name: "opaque", Line: 12}, {Name: "from-file", File: "auth.json", Line: 13},
	}}
	got := (&pullSecretsCheck{e}).Run(context.Background())
	want := []struct {
		status Status
		text   string
	}{
		{OK, "pull secret kf/regcred exists"},
		{Fail, "pull secret elsewhere named in app.yaml (spec.images.pullSecrets, line 11) does not exist in namespace kf"},
		{Fail, "pull secret kf/opaque is of type Opaque"},
		{OK, "pull secret kf/from-file is made by apply from docker config auth.json"},
	}
	if len(got) != len(want) {
		t.Fatalf("findings %+v", got)
	}
	for i, w := range want {
		if got[i].Status != w.status || !strings.Contains(got[i].Finding, w.text) {
			t.Errorf("finding %d: %+v, want %s %q", i, got[i], w.status, w.text)
		}
	}
	if !strings.Contains(got[1].Remedy, "kubectl -n kf create secret docker-registry elsewhere") {
		t.Errorf("remedy %q", got[1].Remedy)
	}

	e.opts.App.Spec.Images = nil
	if got := (&pullSecretsCheck{e}).Run(context.Background()); len(got) != 1 || got[0].Status != OK {
		t.Errorf("without pull secrets: %+v", got)
	}
}
