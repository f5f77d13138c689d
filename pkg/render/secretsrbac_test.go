package render

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A pod of the app's namespace may run as any ServiceAccount of that namespace (a user's
// notebook, a Katib trial, an Argo workflow name one), so a ServiceAccount that may read every
// Secret of the cluster hands them to whoever may create a pod there. None may, unless its
// program reads Secrets of other namespaces and has no way to watch only one; each such
// account is listed here with the source (file@tag) that shows it.
var clusterSecretReaders = map[string]string{}

// builtinSecretReaders are the cluster's own ClusterRoles a binding may name without the app
// rendering them: whether each lets its subjects read Secrets (the user-facing roles of
// https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles; view
// leaves Secrets out).
var builtinSecretReaders = map[string]bool{"cluster-admin": true, "admin": true, "edit": true, "view": false}

// secretReadRule reports whether a rule lets its subjects get, list or watch every Secret: core
// group (or *), secrets (or *), one of those verbs (or *), no resourceNames.
func secretReadRule(rule map[string]any) bool {
	strs := func(key string) []string { return toStrings(asSlice(rule[key])) }
	if len(strs("resourceNames")) > 0 {
		return false
	}
	anyOf := func(list []string, want ...string) bool {
		return slices.ContainsFunc(list, func(s string) bool { return slices.Contains(want, s) })
	}
	return anyOf(strs("apiGroups"), "", "*") && anyOf(strs("resources"), "secrets", "*") &&
		anyOf(strs("verbs"), "get", "list", "watch", "*")
}

// boundToServiceAccount reports whether a binding's subjects include namespace/name, itself or
// through the groups of all ServiceAccounts (of the namespace).
func boundToServiceAccount(binding *unstructured.Unstructured, namespace, name string) bool {
	for _, s := range asSlice(binding.Object["subjects"]) {
		m := asMap(s)
		switch m["kind"] {
		case "ServiceAccount":
			if m["name"] == name && m["namespace"] == namespace {
				return true
			}
		case "Group":
			if m["name"] == "system:serviceaccounts" || m["name"] == "system:serviceaccounts:"+namespace ||
				m["name"] == "system:authenticated" {
				return true
			}
		case "User":
			if m["name"] == "system:serviceaccount:"+namespace+":"+name {
				return true
			}
		}
	}
	return false
}

// clusterSecretAccess names the ClusterRoleBindings of objs through which namespace/name may read
// every Secret of the cluster ("binding → ClusterRole"), and those whose ClusterRole it cannot
// judge (neither rendered nor a known built-in one, or aggregated).
func clusterSecretAccess(objs []*unstructured.Unstructured, namespace, name string) (grants, unknown []string) {
	roles := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			roles[o.GetName()] = o
		}
	}
	for _, b := range objs {
		if b.GetKind() != "ClusterRoleBinding" || !boundToServiceAccount(b, namespace, name) {
			continue
		}
		ref := asMap(b.Object["roleRef"])
		roleName, _ := ref["name"].(string)
		desc := fmt.Sprintf("ClusterRoleBinding %s → ClusterRole %s", b.GetName(), roleName)
		role, rendered := roles[roleName]
		switch {
		case !rendered:
			reads, known := builtinSecretReaders[roleName]
			if !known {
				unknown = append(unknown, desc)
			} else if reads {
				grants = append(grants, desc)
			}
		case role.Object["aggregationRule"] != nil:
			unknown = append(unknown, desc+" (aggregated)")
		case slices.ContainsFunc(asSlice(role.Object["rules"]), func(r any) bool { return secretReadRule(asMap(r)) }):
			grants = append(grants, desc)
		}
	}
	return grants, unknown
}

// No ServiceAccount of the app's namespace may read Secrets cluster-wide in the full preset,
// except those in clusterSecretReaders.
func TestNoClusterWideSecretAccess(t *testing.T) {
	const ns = "kubeflow" // goldenEnv's namespace
	var objs []*unstructured.Unstructured
	for _, c := range presets(t)["full"] {
		objs = append(objs, render(t, c, nil)...)
	}
	var accounts []string
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" && o.GetNamespace() == ns {
			accounts = append(accounts, o.GetName())
		}
	}
	sort.Strings(accounts)
	if len(accounts) == 0 {
		t.Fatal("the full preset renders no ServiceAccount: nothing was checked")
	}
	for _, sa := range accounts {
		grants, unknown := clusterSecretAccess(objs, ns, sa)
		if len(unknown) > 0 {
			t.Errorf("ServiceAccount %s/%s: cannot tell whether %s grant Secrets (add the role to builtinSecretReaders)", ns, sa, strings.Join(unknown, ", "))
		}
		_, allowed := clusterSecretReaders[sa]
		switch {
		case len(grants) > 0 && !allowed:
			t.Errorf("ServiceAccount %s/%s may read every Secret of the cluster through %s: any pod of the namespace may run as it; grant Secrets in a Role of the namespace, or list it in clusterSecretReaders with the source that needs it",
				ns, sa, strings.Join(grants, ", "))
		case len(grants) == 0 && allowed:
			t.Errorf("clusterSecretReaders lists ServiceAccount %s, which no longer reads Secrets cluster-wide: remove it", sa)
		}
	}
	for sa := range clusterSecretReaders {
		if !slices.Contains(accounts, sa) {
			t.Errorf("clusterSecretReaders lists ServiceAccount %s, which the full preset does not render", sa)
		}
	}
}

// The check itself: a ClusterRoleBinding to a rendered ClusterRole with a wildcard, to a
// built-in role that reads Secrets, or through the group of all ServiceAccounts is found; a
// RoleBinding, a rule limited by name and the view role are not.
func TestClusterSecretAccessFinds(t *testing.T) {
	obj := func(kind, name string, fields map[string]any) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": map[string]any{"name": name}}}
		for k, v := range fields {
			o.Object[k] = v
		}
		return o
	}
	rule := func(groups, resources, verbs []any, names ...any) any {
		r := map[string]any{"apiGroups": groups, "resources": resources, "verbs": verbs}
		if len(names) > 0 {
			r["resourceNames"] = names
		}
		return r
	}
	binding := func(kind, name, role string, subject map[string]any) *unstructured.Unstructured {
		return obj(kind, name, map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []any{subject},
		})
	}
	sa := func(name string) map[string]any {
		return map[string]any{"kind": "ServiceAccount", "name": name, "namespace": "ml"}
	}
	objs := []*unstructured.Unstructured{
		obj("ClusterRole", "wild", map[string]any{"rules": []any{rule([]any{"*"}, []any{"*"}, []any{"list"})}}),
		obj("ClusterRole", "named", map[string]any{"rules": []any{rule([]any{""}, []any{"secrets"}, []any{"get"}, "one")}}),
		obj("ClusterRole", "nodes", map[string]any{"rules": []any{rule([]any{""}, []any{"nodes", "secrets"}, []any{"create"})}}),
		binding("ClusterRoleBinding", "a", "wild", sa("a")),
		binding("ClusterRoleBinding", "b", "edit", sa("b")),
		binding("ClusterRoleBinding", "c", "view", sa("c")),
		binding("ClusterRoleBinding", "d", "named", sa("d")),
		binding("ClusterRoleBinding", "e", "nodes", sa("e")),
		binding("RoleBinding", "f", "cluster-admin", sa("f")),
		binding("ClusterRoleBinding", "all", "wild", map[string]any{"kind": "Group", "name": "system:serviceaccounts:ml"}),
		binding("ClusterRoleBinding", "g", "mystery", sa("g")),
	}
	for name, want := range map[string][]string{
		"a": {"ClusterRoleBinding a → ClusterRole wild", "ClusterRoleBinding all → ClusterRole wild"},
		"b": {"ClusterRoleBinding b → ClusterRole edit", "ClusterRoleBinding all → ClusterRole wild"},
		"c": {"ClusterRoleBinding all → ClusterRole wild"},
	} {
		if got, _ := clusterSecretAccess(objs, "ml", name); !slices.Equal(got, want) {
			t.Errorf("%s: grants %q, want %q", name, got, want)
		}
	}
	without := objs[:len(objs)-2]
	for _, name := range []string{"c", "d", "e", "f"} {
		if got, unknown := clusterSecretAccess(without, "ml", name); len(got) > 0 || len(unknown) > 0 {
			t.Errorf("%s: grants %q, unknown %q, want none", name, got, unknown)
		}
	}
	if _, unknown := clusterSecretAccess(objs, "ml", "g"); len(unknown) != 1 {
		t.Errorf("g: unknown %q, want the binding to ClusterRole mystery", unknown)
	}
}
