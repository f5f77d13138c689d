package app

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// Annotations by which a component asks for an htpasswd file of static users in a Secret (the
// gateway component's sign-in). The component renders the Secret without data; generate keeps
// a password per user and the file of their bcrypt hashes in the app's secret store, and puts
// the file's placeholder in the Secret under htpasswdKey, which apply replaces.
const (
	annHtpasswd      = "kfdeploy.dev/htpasswd"       // "component/name": the store key
	annHtpasswdUsers = "kfdeploy.dev/htpasswd-users" // comma-separated user names
	htpasswdKey      = "htpasswd"
)

// ensureHtpasswds is generate's part for the Secrets of a component that ask for an htpasswd
// file; the store key must be the component's own.
func ensureHtpasswds(component string, objs []*unstructured.Unstructured, store *secrets.Store) error {
	for _, o := range objs {
		a := o.GetAnnotations()
		key, ok := a[annHtpasswd]
		if !ok || o.GetKind() != "Secret" || o.GetAPIVersion() != "v1" {
			continue
		}
		comp, name, ok := strings.Cut(key, "/")
		if !ok || comp != component || name == "" {
			return fmt.Errorf("component %s: Secret %s: %s is %q, want %q/<name>", component, o.GetName(), annHtpasswd, key, component)
		}
		users := splitList(a[annHtpasswdUsers])
		if len(users) == 0 {
			return fmt.Errorf("component %s: Secret %s: %s names no users", component, o.GetName(), annHtpasswdUsers)
		}
		ph, err := store.EnsureHtpasswd(comp, name, users)
		if err != nil {
			return fmt.Errorf("component %s: Secret %s: %w", component, o.GetName(), err)
		}
		if err := unstructured.SetNestedStringMap(o.Object, map[string]string{htpasswdKey: ph}, "stringData"); err != nil {
			return fmt.Errorf("component %s: Secret %s: %w", component, o.GetName(), err)
		}
	}
	return nil
}
