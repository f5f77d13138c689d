package preflight

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

type pvOpt func(*corev1.PersistentVolume)

func pv(name, size string, opts ...pvOpt) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func withClass(c string) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = c }
}
func withPhase(p corev1.PersistentVolumePhase) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}
func withModes(m ...corev1.PersistentVolumeAccessMode) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.AccessModes = m }
}
func withClaimRef(ns, name string) pvOpt {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name}
	}
}
func withLabels(l map[string]string) pvOpt { return func(v *corev1.PersistentVolume) { v.Labels = l } }
func withBlock() pvOpt {
	return func(v *corev1.PersistentVolume) {
		m := corev1.PersistentVolumeBlock
		v.Spec.VolumeMode = &m
	}
}

type claimOpt func(*claim)

func newClaim(ns, name, size string, class *string, opts ...claimOpt) claim {
	c := claim{namespace: ns, name: name, spec: corev1.PersistentVolumeClaimSpec{
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		StorageClassName: class,
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
	}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func planOf(t *testing.T, plans []claimPlan, key string) *claimPlan {
	t.Helper()
	for i := range plans {
		if plans[i].key() == key {
			return &plans[i]
		}
	}
	t.Fatalf("no plan for %s", key)
	return nil
}

func TestPlanClaimsStaticMatching(t *testing.T) {
	pvs := []*corev1.PersistentVolume{
		pv("bound", "100Gi", withPhase(corev1.VolumeBound), withClaimRef("x", "y")),
		pv("small", "5Gi"),
		pv("big", "50Gi"),
		pv("fit", "20Gi"),
		pv("classy", "10Gi", withClass("fast")),
		pv("rwx", "10Gi", withModes(corev1.ReadWriteMany)),
	}
	claims := []claim{newClaim("kf", "a", "10Gi", ptr.To(""))}
	plans := planClaims(claims, pvs, nil)
	p := planOf(t, plans, "kf/a")
	if p.outcome != outcomeStatic || p.pv != "fit" {
		t.Fatalf("kf/a: outcome %d pv %q, want the smallest matching PV 'fit'", p.outcome, p.pv)
	}
}

func TestPlanClaimsNoPVCountsTwice(t *testing.T) {
	pvs := []*corev1.PersistentVolume{pv("only", "10Gi"), pv("b1", "10Gi", withPhase(corev1.VolumeBound)), pv("b2", "10Gi", withPhase(corev1.VolumeBound))}
	claims := []claim{newClaim("katib", "katib-mysql", "10Gi", ptr.To("")), newClaim("katib", "a-first", "10Gi", ptr.To(""))}
	plans := planClaims(claims, pvs, nil)
	first, second := planOf(t, plans, "katib/a-first"), planOf(t, plans, "katib/katib-mysql")
	if first.outcome != outcomeStatic || first.pv != "only" {
		t.Errorf("katib/a-first: %+v, want PV only", first)
	}
	if second.outcome != outcomeNeedsPV {
		t.Fatalf("katib/katib-mysql: outcome %d, want needs PV", second.outcome)
	}
	f := claimFinding(second, false)
	want := "katib/katib-mysql needs 10Gi ReadWriteOnce, storageClassName '' — no Available PV matches; 2 PVs are Bound elsewhere, 1 PV is taken by another claim of this app"
	if f.Status != Fail || f.Finding != want {
		t.Errorf("finding %s %q\nwant fail %q", f.Status, f.Finding, want)
	}
	if !strings.Contains(f.Remedy, "--nfs-server") || !strings.Contains(f.Remedy, "at least 10Gi") {
		t.Errorf("remedy %q should name the size and the NFS flags", f.Remedy)
	}
}

func TestPlanClaimsReservedPVGoesToItsClaim(t *testing.T) {
	pvs := []*corev1.PersistentVolume{pv("reserved", "10Gi", withClaimRef("kf", "z")), pv("other", "10Gi", withClaimRef("kf", "elsewhere"))}
	// "a" sorts first and would take any Available PV; the reserved one is z's.
	claims := []claim{newClaim("kf", "a", "10Gi", ptr.To("")), newClaim("kf", "z", "10Gi", ptr.To(""))}
	plans := planClaims(claims, pvs, nil)
	if z := planOf(t, plans, "kf/z"); z.outcome != outcomeStatic || z.pv != "reserved" || !z.reserved {
		t.Errorf("kf/z: %+v, want the PV reserved for it", z)
	}
	a := planOf(t, plans, "kf/a")
	if a.outcome != outcomeNeedsPV || a.miss.reserved != 2 {
		t.Errorf("kf/a: outcome %d miss %+v, want needs PV, both PVs reserved for other claims", a.outcome, a.miss)
	}
}

func TestPlanClaimsMismatches(t *testing.T) {
	block := corev1.PersistentVolumeBlock
	for _, tc := range []struct {
		name  string
		pv    *corev1.PersistentVolume
		claim claim
		miss  pvMiss
	}{
		{"class", pv("v", "10Gi", withClass("fast")), newClaim("n", "c", "1Gi", ptr.To("")), pvMiss{class: 1}},
		{"access modes", pv("v", "10Gi"), newClaim("n", "c", "1Gi", ptr.To(""), func(c *claim) {
			c.spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), pvMiss{accessModes: 1}},
		{"too small", pv("v", "1Gi"), newClaim("n", "c", "2Gi", ptr.To("")), pvMiss{small: 1}},
		{"volume mode", pv("v", "10Gi", withBlock()), newClaim("n", "c", "1Gi", ptr.To("")), pvMiss{mode: 1}},
		{"block claim, filesystem PV", pv("v", "10Gi"), newClaim("n", "c", "1Gi", ptr.To(""), func(c *claim) { c.spec.VolumeMode = &block }), pvMiss{mode: 1}},
		{"selector", pv("v", "10Gi", withLabels(map[string]string{"tier": "slow"})), newClaim("n", "c", "1Gi", ptr.To(""), func(c *claim) {
			c.spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "fast"}}
		}), pvMiss{selector: 1}},
		{"released", pv("v", "10Gi", withPhase(corev1.VolumeReleased)), newClaim("n", "c", "1Gi", ptr.To("")), pvMiss{released: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plans := planClaims([]claim{tc.claim}, []*corev1.PersistentVolume{tc.pv}, nil)
			if plans[0].outcome != outcomeNeedsPV || plans[0].miss != tc.miss {
				t.Errorf("outcome %d miss %+v, want needs PV with %+v", plans[0].outcome, plans[0].miss, tc.miss)
			}
		})
	}
}

func TestPlanClaimsStorageClasses(t *testing.T) {
	scs := []storageClass{
		{name: "standard", provisioner: "rancher.io/local-path", isDefault: true},
		{name: "fast", provisioner: "csi.example.com"},
		{name: "local", provisioner: noProvisioner},
	}
	claims := []claim{
		newClaim("n", "default", "1Gi", nil),
		newClaim("n", "fast", "1Gi", ptr.To("fast")),
		newClaim("n", "missing", "1Gi", ptr.To("nope")),
		newClaim("n", "local", "1Gi", ptr.To("local")),
		newClaim("n", "none", "1Gi", ptr.To("")),
	}
	plans := planClaims(claims, nil, scs)
	for key, want := range map[string]outcome{
		"n/default": outcomeDynamic, "n/fast": outcomeDynamic, "n/missing": outcomeNeedsPV, "n/local": outcomeNeedsPV, "n/none": outcomeNeedsPV,
	} {
		if p := planOf(t, plans, key); p.outcome != want {
			t.Errorf("%s: outcome %d, want %d", key, p.outcome, want)
		}
	}
	if p := planOf(t, plans, "n/default"); p.class != "standard" || !strings.Contains(claimFinding(p, false).Finding, "default StorageClass 'standard'") {
		t.Errorf("n/default: class %q, finding %q", p.class, claimFinding(p, false).Finding)
	}
	if f := claimFinding(planOf(t, plans, "n/missing"), false); f.Status != Fail || !strings.Contains(f.Finding, "StorageClass 'nope' does not exist") {
		t.Errorf("n/missing: %+v", f)
	}
	// Without a default class, a claim without a class needs a PV of class ''.
	plans = planClaims([]claim{newClaim("n", "default", "1Gi", nil)}, []*corev1.PersistentVolume{pv("v", "1Gi")}, nil)
	if plans[0].outcome != outcomeStatic || plans[0].pv != "v" {
		t.Errorf("no default class: %+v, want PV v of class ''", plans[0])
	}
}

func TestPlanClaimsLiveClaims(t *testing.T) {
	bound := newClaim("n", "b", "1Gi", ptr.To(""))
	bound.live = &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-b"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	lost := newClaim("n", "l", "1Gi", ptr.To(""))
	lost.live = &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-l"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimLost}}
	plans := planClaims([]claim{bound, lost}, nil, nil)
	if f := claimFinding(planOf(t, plans, "n/b"), false); f.Status != OK || f.Finding != "n/b is Bound to PV pv-b" {
		t.Errorf("bound: %+v", f)
	}
	if f := claimFinding(planOf(t, plans, "n/l"), false); f.Status != Fail {
		t.Errorf("lost: %+v, want fail", f)
	}
}

func TestClaimFindingWithNFS(t *testing.T) {
	plans := planClaims([]claim{newClaim("kf", "data", "2Gi", nil)}, nil, nil)
	f := claimFinding(&plans[0], true)
	if f.Status != OK || !strings.Contains(f.Finding, "creates PV kfdeploy-kf-data") {
		t.Errorf("with NFS: %+v", f)
	}
	block := corev1.PersistentVolumeBlock
	plans = planClaims([]claim{newClaim("kf", "raw", "2Gi", nil, func(c *claim) { c.spec.VolumeMode = &block })}, nil, nil)
	if f := claimFinding(&plans[0], true); f.Status != Fail || !strings.Contains(f.Finding, "volumeMode Block") {
		t.Errorf("block claim with NFS: %+v, want fail naming the volume mode", f)
	}
}

func TestNFSVolume(t *testing.T) {
	plans := planClaims([]claim{newClaim("katib", "katib-mysql", "10Gi", nil, func(c *claim) {
		c.spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
	})}, nil, nil)
	v := nfsVolume("myapp", &config.NFS{Server: "nfs.example", Path: "/nfs-data"}, &plans[0])
	if v.Name != "kfdeploy-katib-katib-mysql" || v.Spec.NFS.Path != "/nfs-data/katib-katib-mysql" || v.Spec.NFS.Server != "nfs.example" {
		t.Errorf("name %q path %q server %q", v.Name, v.Spec.NFS.Path, v.Spec.NFS.Server)
	}
	if q := v.Spec.Capacity[corev1.ResourceStorage]; q.String() != "10Gi" || v.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("capacity %s modes %v", q.String(), v.Spec.AccessModes)
	}
	if v.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || v.Spec.StorageClassName != "" {
		t.Errorf("reclaim %s class %q", v.Spec.PersistentVolumeReclaimPolicy, v.Spec.StorageClassName)
	}
	if r := v.Spec.ClaimRef; r == nil || r.Namespace != "katib" || r.Name != "katib-mysql" || r.UID != "" {
		t.Errorf("claimRef %+v", r)
	}
	if v.Labels[inventory.LabelApp] != "myapp" || v.Labels["app.kubernetes.io/managed-by"] != "kfdeploy" || v.Labels["tier"] != "db" {
		t.Errorf("labels %v", v.Labels)
	}
	if _, ok := v.Labels[inventory.LabelPartOf]; ok {
		t.Errorf("the PV must not be an ApplySet member: %v", v.Labels)
	}
	if !reservedFor(v, &plans[0].claim) || !fitsSize(v, &plans[0].claim) {
		t.Error("the PV does not match its own claim")
	}
}

func TestNFSVolumeName(t *testing.T) {
	long := strings.Repeat("a", 250)
	n1, n2 := nfsVolumeName("ns", long), nfsVolumeName("ns", long+"b")
	if len(n1) > 253 || len(n2) > 253 || n1 == n2 {
		t.Errorf("long names: %d %d, distinct %v", len(n1), len(n2), n1 != n2)
	}
	if n1 != nfsVolumeName("ns", long) {
		t.Error("name is not deterministic")
	}
	if got := nfsVolumeName("ns", strings.Repeat("a", 240)+"."+strings.Repeat("b", 20)); strings.Contains(got, ".-") || strings.Contains(got, "--") {
		t.Errorf("cut name %q has an empty label", got)
	}
}

func TestAppClaimsStatefulSetTemplates(t *testing.T) {
	sts := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "StatefulSet",
		"metadata": map[string]any{"name": "db", "namespace": "kf"},
		"spec": map[string]any{
			"replicas": int64(2),
			"volumeClaimTemplates": []any{map[string]any{
				"metadata": map[string]any{"name": "data"},
				"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
					"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}},
			}},
		},
	}}
	claims, err := appClaims([]target{{obj: sts, id: manifest.IDOf(sts), namespaced: true}}, "kf")
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 || claims[0].key() != "kf/data-db-0" || claims[1].key() != "kf/data-db-1" {
		t.Errorf("claims %v", claims)
	}
}
