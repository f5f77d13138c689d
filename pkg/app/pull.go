package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// Pull secrets (spec.images.pullSecrets): render gives every pod spec and ServiceAccount of the
// namespace their names, and the components pass them on to the pods their controllers start.
// An entry with a docker config file becomes a kubernetes.io/dockerconfigjson Secret of the
// app: its contents go to secrets.yaml, and the manifests hold only a placeholder, which apply
// resolves like a generated password.

// addPullSecretObjects adds the Secret of every file entry of spec.images.pullSecrets to the
// objects of the app's first component (which every apply applies with the app), the
// contents stored in the store. A file that no longer exists keeps the stored copy.
func addPullSecretObjects(a *config.App, appDir string, store *secrets.Store, out map[string][]*unstructured.Unstructured) error {
	im := a.Spec.Images
	if im == nil || len(a.Spec.Components) == 0 {
		return nil
	}
	first := a.Spec.Components[0].Name
	var errs []error
	for _, ps := range im.PullSecrets {
		if ps.File == "" {
			continue
		}
		path := ps.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(appDir, path)
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			data, err = nil, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: spec.images.pullSecrets %s: %w", appFile(appDir), ps.Line, ps.Name, err))
			continue
		}
		ph, err := store.EnsureDockerConfig(ps.Name, data, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", appFile(appDir), ps.Line, err))
			continue
		}
		labels := map[string]string{
			"app.kubernetes.io/name":       ps.Name,
			"app.kubernetes.io/component":  "image-pull",
			"app.kubernetes.io/part-of":    "kubeflow",
			"app.kubernetes.io/managed-by": "kfdeploy",
		}
		out[first] = append(out[first], secrets.DockerConfigSecret(ps.Name, a.Spec.Namespace, ph, labels))
	}
	manifest.Sort(out[first])
	return errors.Join(errs...)
}
