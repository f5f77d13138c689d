package preflight

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// The rules below mirror the PersistentVolume controller's (pkg/controller/volume/persistentvolume:
// findMatchingVolume): a PV reserved for the claim by claimRef wins if it is large enough and
// of the right access and volume modes; otherwise the smallest Available, unreserved PV of the
// claim's class, access modes, volume mode and selector that holds the request.

const (
	annStorageClass      = "volume.beta.kubernetes.io/storage-class"
	annDefaultClass      = "storageclass.kubernetes.io/is-default-class"
	annBetaDefaultClass  = "storageclass.beta.kubernetes.io/is-default-class"
	noProvisioner        = "kubernetes.io/no-provisioner"
	defaultFilesystemStr = "Filesystem"
)

// claim is a PersistentVolumeClaim the app needs, as the binder sees it.
type claim struct {
	namespace, name string
	spec            corev1.PersistentVolumeClaimSpec
	// live is the claim in the cluster, nil when it does not exist yet.
	live *corev1.PersistentVolumeClaim
}

func (c *claim) key() string { return c.namespace + "/" + c.name }

func (c *claim) uid() types.UID {
	if c.live == nil {
		return ""
	}
	return c.live.UID
}

func (c *claim) request() resource.Quantity {
	return c.spec.Resources.Requests[corev1.ResourceStorage]
}

// pvMiss counts why PVs did not match a claim, for a finding that says what is out there.
type pvMiss struct {
	bound, reserved, released, taken          int
	class, accessModes, small, mode, selector int
}

// String is "2 PVs are Bound elsewhere, 1 Available PV is too small", or "" for no PVs at all.
func (m pvMiss) String() string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(m.bound, "PV is Bound elsewhere", "PVs are Bound elsewhere")
	add(m.reserved, "PV is reserved for another claim", "PVs are reserved for other claims")
	add(m.released, "PV is Released or Failed", "PVs are Released or Failed")
	add(m.taken, "PV is taken by another claim of this app", "PVs are taken by other claims of this app")
	add(m.class, "Available PV has another storageClassName", "Available PVs have another storageClassName")
	add(m.accessModes, "Available PV lacks the access modes", "Available PVs lack the access modes")
	add(m.small, "Available PV is too small", "Available PVs are too small")
	add(m.mode, "Available PV has another volumeMode", "Available PVs have another volumeMode")
	add(m.selector, "Available PV does not match the claim's selector", "Available PVs do not match the claim's selector")
	return strings.Join(parts, ", ")
}

// pvClass is the PV's class, from the field or the old beta annotation.
func pvClass(pv *corev1.PersistentVolume) string {
	if pv.Spec.StorageClassName != "" {
		return pv.Spec.StorageClassName
	}
	return pv.Annotations[annStorageClass]
}

func volumeMode(m *corev1.PersistentVolumeMode) string {
	if m == nil || *m == "" {
		return defaultFilesystemStr
	}
	return string(*m)
}

// hasAccessModes: the PV offers every access mode the claim asks for.
func hasAccessModes(pv *corev1.PersistentVolume, want []corev1.PersistentVolumeAccessMode) bool {
	for _, w := range want {
		found := false
		for _, m := range pv.Spec.AccessModes {
			if m == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func capacity(pv *corev1.PersistentVolume) resource.Quantity {
	return pv.Spec.Capacity[corev1.ResourceStorage]
}

// reservedFor reports whether the PV's claimRef names this claim (and, once the claim exists
// and the ref carries a UID, this very claim rather than an earlier one of the same name).
func reservedFor(pv *corev1.PersistentVolume, c *claim) bool {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Namespace != c.namespace || ref.Name != c.name {
		return false
	}
	return ref.UID == "" || ref.UID == c.uid()
}

// fitsSize checks what the binder checks even for a PV reserved for the claim.
func fitsSize(pv *corev1.PersistentVolume, c *claim) bool {
	req := c.request()
	cp := capacity(pv)
	return cp.Cmp(req) >= 0 && volumeMode(pv.Spec.VolumeMode) == volumeMode(c.spec.VolumeMode) && hasAccessModes(pv, c.spec.AccessModes)
}

// reservedPV returns the PV that names the claim in its claimRef, if one fits it.
func reservedPV(c *claim, pvs []*corev1.PersistentVolume, used map[string]bool) *corev1.PersistentVolume {
	for _, pv := range pvs {
		if pv.DeletionTimestamp == nil && !used[pv.Name] && reservedFor(pv, c) && fitsSize(pv, c) &&
			pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			return pv
		}
	}
	return nil
}

// matchPV returns the smallest Available PV of the class that fits the claim, or why none does.
func matchPV(c *claim, class string, pvs []*corev1.PersistentVolume, used map[string]bool) (*corev1.PersistentVolume, pvMiss) {
	var miss pvMiss
	var selector labels.Selector
	if c.spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(c.spec.Selector)
		if err != nil {
			s = labels.Nothing() // an invalid selector matches nothing, as the binder sees it
		}
		selector = s
	}
	req := c.request()
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		switch {
		case pv.DeletionTimestamp != nil:
			continue
		case pv.Status.Phase == corev1.VolumeBound:
			miss.bound++
			continue
		case pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed:
			miss.released++
			continue
		case pv.Spec.ClaimRef != nil:
			miss.reserved++
			continue
		case used[pv.Name]:
			miss.taken++
			continue
		case pvClass(pv) != class:
			miss.class++
			continue
		case !hasAccessModes(pv, c.spec.AccessModes):
			miss.accessModes++
			continue
		}
		cp := capacity(pv)
		switch {
		case cp.Cmp(req) < 0:
			miss.small++
			continue
		case volumeMode(pv.Spec.VolumeMode) != volumeMode(c.spec.VolumeMode):
			miss.mode++
			continue
		case selector != nil && !selector.Matches(labels.Set(pv.Labels)):
			miss.selector++
			continue
		}
		if best == nil {
			best = pv
			continue
		}
		if bc := capacity(best); cp.Cmp(bc) < 0 || (cp.Cmp(bc) == 0 && pv.Name < best.Name) {
			best = pv
		}
	}
	return best, miss
}

// defaultClass returns the cluster's default StorageClass ("" if none): the newest of those
// marked default, as the admission plugin picks.
func defaultClass(scs []storageClass) string {
	var defaults []storageClass
	for _, sc := range scs {
		if sc.isDefault {
			defaults = append(defaults, sc)
		}
	}
	if len(defaults) == 0 {
		return ""
	}
	sort.Slice(defaults, func(i, j int) bool {
		if !defaults[i].created.Equal(&defaults[j].created) {
			return defaults[j].created.Before(&defaults[i].created)
		}
		return defaults[i].name < defaults[j].name
	})
	return defaults[0].name
}

// storageClass is what the check needs of a StorageClass.
type storageClass struct {
	name        string
	provisioner string
	isDefault   bool
	created     metav1.Time
}

// describeModes writes access modes as the claim lists them.
func describeModes(modes []corev1.PersistentVolumeAccessMode) string {
	if len(modes) == 0 {
		return "no access mode"
	}
	s := make([]string, len(modes))
	for i, m := range modes {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}
