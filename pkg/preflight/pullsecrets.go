package preflight

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pullSecretsCheck: every pull Secret of spec.images.pullSecrets that the operator creates
// (those without a file) exists in the app's namespace and is of a type the kubelet reads.
// Only the Secret's type is looked at; its contents are never read out or shown.
type pullSecretsCheck struct{ e *env }

func (c *pullSecretsCheck) Name() string { return "pull-secrets" }

func (c *pullSecretsCheck) Run(ctx context.Context) []Finding {
	im := c.e.opts.App.Spec.Images
	if im == nil || len(im.PullSecrets) == 0 {
		return []Finding{{Status: OK, Finding: "no pull secrets in app.yaml (spec.images.pullSecrets): images are pulled without a login"}}
	}
	ns := c.e.ns
	var findings []Finding
	for _, ps := range im.PullSecrets {
		if ps.File != "" {
			findings = append(findings, Finding{Status: OK, Finding: fmt.Sprintf("pull secret %s/%s is made by apply from docker config %s (kept in secrets.yaml)", ns, ps.Name, ps.File)})
			continue
		}
		create := fmt.Sprintf("kubectl -n %s create secret docker-registry %s --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD, or give it a docker config file in app.yaml (spec.images.pullSecrets: [{name: %s, file: FILE}])", ns, ps.Name, ps.Name)
		s, err := c.e.fast.CoreV1().Secrets(ns).Get(ctx, ps.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("pull secret %s named in app.yaml (spec.images.pullSecrets, line %d) does not exist in namespace %s: pods would pull without a login", ps.Name, ps.Line, ns),
				Remedy:  create})
		case err != nil:
			findings = append(findings, Finding{Status: Warn, Finding: fmt.Sprintf("cannot read pull secret %s/%s: %v", ns, ps.Name, err),
				Remedy: "grant get on secrets of the namespace to check it"})
		case s.Type != corev1.SecretTypeDockerConfigJson && s.Type != corev1.SecretTypeDockercfg:
			findings = append(findings, Finding{Status: Fail,
				Finding: fmt.Sprintf("pull secret %s/%s is of type %s: the kubelet reads logins only from type %s", ns, ps.Name, s.Type, corev1.SecretTypeDockerConfigJson),
				Remedy:  "recreate it with " + create})
		default:
			findings = append(findings, Finding{Status: OK, Finding: fmt.Sprintf("pull secret %s/%s exists (%s)", ns, ps.Name, s.Type)})
		}
	}
	return findings
}
