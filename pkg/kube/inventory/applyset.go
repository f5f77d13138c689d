// Package inventory is who owns what: the ApplySet parent Secret that lists an app's kinds and
// namespaces (KEP-3659), the members that carry its label, and the parents of every kfdeploy
// app of the cluster, by which cluster-scoped objects are shared between apps.
package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// ApplySet labels and annotations of KEP-3659, so that kubectl's --applyset understands the
// inventory kfdeploy keeps in the cluster.
const (
	LabelApplySetID         = "applyset.kubernetes.io/id"
	LabelPartOf             = "applyset.kubernetes.io/part-of"
	AnnotationTooling       = "applyset.kubernetes.io/tooling"
	AnnotationGroupKinds    = "applyset.kubernetes.io/contains-group-kinds"
	AnnotationAddNamespaces = "applyset.kubernetes.io/additional-namespaces"
	tooling                 = "kfdeploy/v1"
	LabelApp                = "kfdeploy.dev/app"
	annotationCreatedNSs    = "kfdeploy.dev/created-namespaces"
	AnnotationKeepOnDelete  = "kfdeploy.dev/keep-on-delete"
	// The cluster the inventory was last applied to, as the applying run saw it (pkg/clusterid).
	AnnotationClusterUID     = "kfdeploy.dev/cluster-kube-system-uid"
	AnnotationClusterContext = "kfdeploy.dev/cluster-context"
	AnnotationClusterServer  = "kfdeploy.dev/cluster-server"
	AnnotationClusterCA      = "kfdeploy.dev/cluster-ca-sha256"
	FieldManager             = "kfdeploy"
	// dataAppliedFields is the parent's data key that records Record.AppliedFields (JSON):
	// data, not an annotation, as it grows with the app (annotations share 256 KiB).
	dataAppliedFields       = "applied-fields"
	parentNamePrefix        = "kfdeploy-"
	parentKind, parentGroup = "Secret", ""
)

// ApplySet identifies an app's inventory: a parent Secret in the app's namespace whose labels
// and annotations list what the app owns; members carry the part-of label.
type ApplySet struct {
	App       string
	Namespace string
}

// ParentName is the name of the parent Secret.
func (s ApplySet) ParentName() string { return parentNamePrefix + s.App }

// ID is the KEP-3659 id of the set's parent, as kubectl computes it.
func (s ApplySet) ID() string {
	return applySetID(s.ParentName(), s.Namespace, parentKind, parentGroup)
}

// applySetID is the KEP-3659 id of a parent: base64url(sha256(name.namespace.kind.group)),
// wrapped as applyset-…-v1.
func applySetID(name, namespace, kind, group string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{name, namespace, kind, group}, ".")))
	return "applyset-" + base64.RawURLEncoding.EncodeToString(sum[:]) + "-v1"
}

// Selector selects the members of the set.
func (s ApplySet) Selector() string { return LabelPartOf + "=" + s.ID() }

// ErrNotFound means there was no inventory for the app: nothing to delete, no status to show.
var ErrNotFound = errors.New("no such app in the cluster")

// Record is what the parent records.
type Record struct {
	Exists            bool
	GroupKinds        []schema.GroupKind
	Namespaces        []string // the parent's namespace first, then additional namespaces
	CreatedNamespaces []string // namespaces that did not exist before kfdeploy applied them
	// Cluster is the cluster the last apply recorded (UID "" when none was recorded).
	Cluster clusterid.Identity
	// AppliedFields is, per member ID (manifest.ID's string), the fingerprint of kfdeploy's
	// own fields on it after kfdeploy's last apply of it (see the engine's fieldsFingerprint).
	AppliedFields map[string]string
	// Shared are the cluster-scoped objects the app declares that another app owns (see
	// AnnotationShared).
	Shared []manifest.ID
}

// Read reads the parent; a missing parent is an empty inventory.
func Read(ctx context.Context, c *kube.Client, s ApplySet) (Record, error) {
	parent, err := c.Typed.CoreV1().Secrets(s.Namespace).Get(ctx, s.ParentName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Record{Namespaces: []string{s.Namespace}}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("read inventory %s/%s: %w", s.Namespace, s.ParentName(), err)
	}
	if id := parent.Labels[LabelApplySetID]; id != s.ID() {
		return Record{}, fmt.Errorf("secret %s/%s is not the inventory of app %s (label %s is %q, expected %q): rename the app or remove that secret",
			s.Namespace, s.ParentName(), s.App, LabelApplySetID, id, s.ID())
	}
	if t := parent.Annotations[AnnotationTooling]; t != "" && !strings.HasPrefix(t, "kfdeploy/") {
		return Record{}, fmt.Errorf("applyset %s/%s is managed by %q, not kfdeploy: manage it with that tool", s.Namespace, s.ParentName(), t)
	}
	inv := Record{Exists: true, GroupKinds: kube.ParseKinds(parent.Annotations[AnnotationGroupKinds])}
	inv.Namespaces = append([]string{s.Namespace}, splitList(parent.Annotations[AnnotationAddNamespaces])...)
	inv.CreatedNamespaces = splitList(parent.Annotations[annotationCreatedNSs])
	inv.Shared = parseIDs(parent.Annotations[AnnotationShared])
	inv.Cluster = clusterid.Identity{
		UID:           parent.Annotations[AnnotationClusterUID],
		Context:       parent.Annotations[AnnotationClusterContext],
		Server:        parent.Annotations[AnnotationClusterServer],
		CAFingerprint: parent.Annotations[AnnotationClusterCA],
	}
	// A record that cannot be read is no record: every object is sent once, and the apply
	// that follows writes it anew.
	if raw := parent.Data[dataAppliedFields]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &inv.AppliedFields); err != nil {
			inv.AppliedFields = nil
		}
	}
	return inv, nil
}

// Write creates or updates the parent (server-side apply) with the given contents.
func Write(ctx context.Context, c *kube.Client, s ApplySet, inv Record) error {
	if err := kube.MaySend(ctx); err != nil {
		return err
	}
	kinds := make([]string, 0, len(inv.GroupKinds))
	for _, gk := range inv.GroupKinds {
		kinds = append(kinds, kube.KindString(gk))
	}
	additional := sets.New(inv.Namespaces...)
	additional.Delete(s.Namespace, "")
	annotations := map[string]string{
		AnnotationTooling:       tooling,
		AnnotationGroupKinds:    strings.Join(sets.List(sets.New(kinds...)), ","),
		AnnotationAddNamespaces: strings.Join(sets.List(additional), ","),
	}
	if len(inv.CreatedNamespaces) > 0 {
		annotations[annotationCreatedNSs] = strings.Join(sets.List(sets.New(inv.CreatedNamespaces...)), ",")
	}
	if len(inv.Shared) > 0 {
		annotations[AnnotationShared] = formatIDs(inv.Shared)
	}
	if id := inv.Cluster; id.UID != "" {
		annotations[AnnotationClusterUID] = id.UID
		annotations[AnnotationClusterContext] = id.Context
		annotations[AnnotationClusterServer] = id.Server
		if id.CAFingerprint != "" {
			annotations[AnnotationClusterCA] = id.CAFingerprint
		}
	}
	parent := applycorev1.Secret(s.ParentName(), s.Namespace).
		WithLabels(map[string]string{LabelApplySetID: s.ID(), LabelApp: s.App}).
		WithAnnotations(annotations).
		WithType(corev1.SecretTypeOpaque)
	if len(inv.AppliedFields) > 0 {
		record, err := json.Marshal(inv.AppliedFields) // keys sorted: the same record, the same bytes
		if err != nil {
			return fmt.Errorf("write inventory %s/%s: %w", s.Namespace, s.ParentName(), err)
		}
		parent.WithData(map[string][]byte{dataAppliedFields: record})
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if _, err := c.Typed.CoreV1().Secrets(s.Namespace).Apply(ctx, parent, opts); err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", s.Namespace, s.ParentName(), err)
	}
	return nil
}

// Delete removes the parent.
func Delete(ctx context.Context, c *kube.Client, s ApplySet) error {
	if err := kube.MaySend(ctx); err != nil {
		return err
	}
	err := c.Typed.CoreV1().Secrets(s.Namespace).Delete(ctx, s.ParentName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete inventory %s/%s: %w", s.Namespace, s.ParentName(), err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// UnionKinds is the kinds of a and b, each once, sorted.
func UnionKinds(a, b []schema.GroupKind) []schema.GroupKind {
	seen := map[schema.GroupKind]bool{}
	var out []schema.GroupKind
	for _, gk := range append(append([]schema.GroupKind{}, a...), b...) {
		if !seen[gk] {
			seen[gk] = true
			out = append(out, gk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return kube.KindString(out[i]) < kube.KindString(out[j]) })
	return out
}

// Same reports whether writing b over a would change nothing.
func Same(a, b Record) bool {
	kinds := func(gks []schema.GroupKind) []string {
		out := make([]string, 0, len(gks))
		for _, gk := range gks {
			out = append(out, kube.KindString(gk))
		}
		return sets.List(sets.New(out...))
	}
	list := func(xs []string) []string { return sets.List(sets.New(xs...)) }
	return a.Exists && b.Exists &&
		slices.Equal(kinds(a.GroupKinds), kinds(b.GroupKinds)) &&
		slices.Equal(list(a.Namespaces), list(b.Namespaces)) &&
		slices.Equal(list(a.CreatedNamespaces), list(b.CreatedNamespaces)) &&
		formatIDs(a.Shared) == formatIDs(b.Shared) &&
		a.Cluster == b.Cluster && maps.Equal(a.AppliedFields, b.AppliedFields)
}
