package kube

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
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
	// dataAppliedFields is the parent's data key that records Inventory.AppliedFields (JSON):
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

// Inventory is what the parent records.
type Inventory struct {
	Exists            bool
	GroupKinds        []schema.GroupKind
	Namespaces        []string // the parent's namespace first, then additional namespaces
	CreatedNamespaces []string // namespaces that did not exist before kfdeploy applied them
	// Cluster is the cluster the last apply recorded (UID "" when none was recorded).
	Cluster clusterid.Identity
	// AppliedFields is, per member ID (manifest.ID's string), the fingerprint of kfdeploy's
	// own fields on it after kfdeploy's last apply of it (see fieldsFingerprint).
	AppliedFields map[string]string
	// Shared are the cluster-scoped objects the app declares that another app owns (see
	// AnnotationShared).
	Shared []manifest.ID
}

// ReadInventory reads the parent; a missing parent is an empty inventory.
func (c *Client) ReadInventory(ctx context.Context, s ApplySet) (Inventory, error) {
	parent, err := c.Typed.CoreV1().Secrets(s.Namespace).Get(ctx, s.ParentName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Inventory{Namespaces: []string{s.Namespace}}, nil
	}
	if err != nil {
		return Inventory{}, fmt.Errorf("read inventory %s/%s: %w", s.Namespace, s.ParentName(), err)
	}
	if id := parent.Labels[LabelApplySetID]; id != s.ID() {
		return Inventory{}, fmt.Errorf("secret %s/%s is not the inventory of app %s (label %s is %q, expected %q): rename the app or remove that secret",
			s.Namespace, s.ParentName(), s.App, LabelApplySetID, id, s.ID())
	}
	if t := parent.Annotations[AnnotationTooling]; t != "" && !strings.HasPrefix(t, "kfdeploy/") {
		return Inventory{}, fmt.Errorf("applyset %s/%s is managed by %q, not kfdeploy: manage it with that tool", s.Namespace, s.ParentName(), t)
	}
	inv := Inventory{Exists: true, GroupKinds: parseKinds(parent.Annotations[AnnotationGroupKinds])}
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

// WriteInventory creates or updates the parent (server-side apply) with the given contents.
func (c *Client) WriteInventory(ctx context.Context, s ApplySet, inv Inventory) error {
	if err := checkLock(ctx); err != nil {
		return err
	}
	kinds := make([]string, 0, len(inv.GroupKinds))
	for _, gk := range inv.GroupKinds {
		kinds = append(kinds, kindString(gk))
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

// DeleteInventory removes the parent.
func (c *Client) DeleteInventory(ctx context.Context, s ApplySet) error {
	if err := checkLock(ctx); err != nil {
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

func unionKinds(a, b []schema.GroupKind) []schema.GroupKind {
	seen := map[schema.GroupKind]bool{}
	var out []schema.GroupKind
	for _, gk := range append(append([]schema.GroupKind{}, a...), b...) {
		if !seen[gk] {
			seen[gk] = true
			out = append(out, gk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return kindString(out[i]) < kindString(out[j]) })
	return out
}
