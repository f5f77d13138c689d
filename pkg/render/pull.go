package render

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/images"
)

// addPullSecrets gives every pod spec and every ServiceAccount of the app's namespace the pull
// secrets of env, whichever component (built-in, the app's jsonnet or plain YAML) rendered
// them: pod specs as their own imagePullSecrets, ServiceAccounts for the pods that controllers
// start with them (the ServiceAccount admission plugin copies a ServiceAccount's pull secrets
// into a pod that names none). Objects of other namespaces are left as they are: a Secret
// serves only pods of its own namespace.
func addPullSecrets(objs []*unstructured.Unstructured, env Env) {
	if len(env.ImagePullSecrets) == 0 {
		return
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != env.Namespace {
			continue
		}
		if o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1" {
			images.AddPullSecrets(o.Object, env.ImagePullSecrets)
			continue
		}
		images.PodSpecs(o.Object, func(spec map[string]any) {
			images.AddPullSecrets(spec, env.ImagePullSecrets)
		})
	}
}
