package preflight

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/kfdeploy/kfdeploy/pkg/kube/engine"
)

// How a claim of the app will get its volume.
type outcome int

const (
	outcomeBound   outcome = iota // already Bound in the cluster
	outcomeStatic                 // an existing PV matches (or is reserved for it)
	outcomeDynamic                // a StorageClass provisions one
	outcomeNeedsPV                // nothing: a PV must be created (by hand or by the nfs check)
	outcomeLost                   // the claim is Lost: its PV is gone
)

// claimPlan is the verdict on one claim.
type claimPlan struct {
	claim
	class       string // the class the binder will use ("" = none)
	classSet    bool   // the claim names a class (else: the default class, if any)
	outcome     outcome
	pv          string // bound or matching PV
	reserved    bool   // the matching PV is reserved for this claim by claimRef
	provisioner string // with outcomeDynamic
	scMissing   bool   // the named StorageClass does not exist
	miss        pvMiss
	// nfsProblem says why an NFS PV cannot serve the claim ("" when it can).
	nfsProblem string
}

// storagePlan is computed once per run and shared by the storage and nfs checks.
type storagePlan struct {
	claims []claimPlan
	err    error
}

// storage computes the plan on first use.
func (e *env) storagePlan(ctx context.Context) *storagePlan {
	e.storageOnce.Do(func() {
		claims, err := appClaims(e.resolved(), e.ns)
		if err != nil {
			e.storage = &storagePlan{err: err}
			return
		}
		if len(claims) == 0 {
			e.storage = &storagePlan{}
			return
		}
		pvs, scs, err := readStorage(ctx, e.fast, e.client.Typed, e.snap, claims)
		if err != nil {
			e.storage = &storagePlan{err: err}
			return
		}
		e.storage = &storagePlan{claims: planClaims(claims, pvs, scs)}
	})
	return e.storage
}

// appClaims lists the claims the app creates: its PersistentVolumeClaims and the claims of its
// StatefulSets' volumeClaimTemplates ("<template>-<statefulset>-<ordinal>").
func appClaims(targets []target, defaultNS string) ([]claim, error) {
	var out []claim
	for _, t := range targets {
		if t.err != nil || t.id.Group != "" && t.id.Group != "apps" {
			continue
		}
		ns := t.id.Namespace
		if ns == "" {
			ns = defaultNS
		}
		switch {
		case t.id.Group == "" && t.id.Kind == "PersistentVolumeClaim":
			var pvc corev1.PersistentVolumeClaim
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(t.obj.Object, &pvc); err != nil {
				return nil, fmt.Errorf("read %s: %w", t.id, err)
			}
			out = append(out, claim{namespace: ns, name: pvc.Name, spec: pvc.Spec})
		case t.id.Group == "apps" && t.id.Kind == "StatefulSet":
			templates, _, _ := unstructured.NestedSlice(t.obj.Object, "spec", "volumeClaimTemplates")
			replicas, found, _ := unstructured.NestedInt64(t.obj.Object, "spec", "replicas")
			if !found {
				replicas = 1
			}
			for _, raw := range templates {
				m, ok := raw.(map[string]any)
				if !ok {
					continue
				}
				var pvc corev1.PersistentVolumeClaim
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &pvc); err != nil {
					return nil, fmt.Errorf("read %s volumeClaimTemplates: %w", t.id, err)
				}
				for i := int64(0); i < replicas; i++ {
					out = append(out, claim{namespace: ns, name: fmt.Sprintf("%s-%s-%d", pvc.Name, t.id.Name, i), spec: pvc.Spec})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out, nil
}

// claimsResource is where claims are read.
var claimsResource = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}

// readStorage lists PVs and StorageClasses and finds the app's claims in the snapshot's lists
// of claims (one per namespace), concurrently.
func readStorage(ctx context.Context, fast, typed kubernetes.Interface, snap *engine.Snapshot, claims []claim) ([]*corev1.PersistentVolume, []storageClass, error) {
	var pvs []*corev1.PersistentVolume
	var scs []storageClass
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // the two lists, and the claims a few at a time
	g.Go(func() error {
		p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return fast.CoreV1().PersistentVolumes().List(ctx, opts)
		})
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
			pv, ok := o.(*corev1.PersistentVolume)
			if !ok {
				return fmt.Errorf("unexpected item %T", o)
			}
			pvs = append(pvs, pv)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list persistentvolumes: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		list, err := typed.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list storageclasses: %w", err)
		}
		for _, sc := range list.Items {
			scs = append(scs, storageClass{name: sc.Name, provisioner: sc.Provisioner, created: sc.CreationTimestamp,
				isDefault: sc.Annotations[annDefaultClass] == "true" || sc.Annotations[annBetaDefaultClass] == "true"})
		}
		return nil
	})
	for i := range claims {
		g.Go(func() error {
			o, err := snap.Get(ctx, claimsResource, claims[i].namespace, claims[i].name)
			if err != nil {
				return fmt.Errorf("read persistentvolumeclaim %s: %w", claims[i].key(), err)
			}
			if o == nil || o.Object == nil {
				return nil
			}
			pvc := &corev1.PersistentVolumeClaim{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, pvc); err != nil {
				return fmt.Errorf("read persistentvolumeclaim %s: %w", claims[i].key(), err)
			}
			mu.Lock()
			claims[i].live = pvc
			claims[i].spec = pvc.Spec // the binder works from the live claim
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return pvs, scs, nil
}

// planClaims decides for each claim how it gets a volume. Claims that a PV names first (so
// that a general match never takes a PV reserved for a later claim), then the others in order;
// a PV counts for one claim only.
func planClaims(claims []claim, pvs []*corev1.PersistentVolume, scs []storageClass) []claimPlan {
	def := defaultClass(scs)
	classes := map[string]storageClass{}
	for _, sc := range scs {
		classes[sc.name] = sc
	}
	used := map[string]bool{}
	plans := make([]claimPlan, len(claims))
	done := make([]bool, len(claims))
	for i := range claims {
		p := &plans[i]
		p.claim = claims[i]
		p.classSet = p.spec.StorageClassName != nil
		if p.classSet {
			p.class = *p.spec.StorageClassName
		} else {
			p.class = def // retroactively assigned by the PV controller, if there is a default
		}
		p.nfsProblem = nfsProblem(&p.claim)
		switch {
		case p.live != nil && p.live.Status.Phase == corev1.ClaimBound:
			p.outcome, p.pv, done[i] = outcomeBound, p.live.Spec.VolumeName, true
			used[p.pv] = true
		case p.live != nil && p.live.Status.Phase == corev1.ClaimLost:
			p.outcome, p.pv, done[i] = outcomeLost, p.live.Spec.VolumeName, true
		case p.spec.VolumeName != "":
			p.outcome, done[i] = outcomeNeedsPV, true
			for _, pv := range pvs {
				if pv.Name == p.spec.VolumeName && (pv.Spec.ClaimRef == nil || reservedFor(pv, &p.claim)) && fitsSize(pv, &p.claim) {
					p.outcome, p.pv, p.reserved = outcomeStatic, pv.Name, true
					used[pv.Name] = true
				}
			}
		default:
			if pv := reservedPV(&p.claim, pvs, used); pv != nil {
				p.outcome, p.pv, p.reserved, done[i] = outcomeStatic, pv.Name, true, true
				used[pv.Name] = true
			}
		}
	}
	order := make([]int, len(plans))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return plans[order[a]].key() < plans[order[b]].key() })
	for _, i := range order {
		if done[i] {
			continue
		}
		p := &plans[i]
		pv, miss := matchPV(&p.claim, p.class, pvs, used)
		p.miss = miss
		if pv != nil {
			p.outcome, p.pv = outcomeStatic, pv.Name
			used[pv.Name] = true
			continue
		}
		sc, exists := classes[p.class]
		switch {
		case p.class != "" && exists && sc.provisioner != noProvisioner:
			p.outcome, p.provisioner = outcomeDynamic, sc.provisioner
		case p.class != "" && !exists:
			p.outcome, p.scMissing = outcomeNeedsPV, true
		default:
			p.outcome = outcomeNeedsPV
		}
	}
	return plans
}

// nfsProblem says why kfdeploy cannot make an NFS PV that the binder would give this claim.
func nfsProblem(c *claim) string {
	switch {
	case volumeMode(c.spec.VolumeMode) != defaultFilesystemStr:
		return "NFS volumes are filesystems and the claim asks for volumeMode " + volumeMode(c.spec.VolumeMode)
	case c.spec.VolumeName != "":
		return "the claim names its volume " + c.spec.VolumeName
	case c.spec.Selector != nil && len(c.spec.Selector.MatchExpressions) > 0:
		return "the claim's selector has matchExpressions"
	case c.spec.DataSource != nil || c.spec.DataSourceRef != nil:
		return "the claim wants its data from a dataSource"
	case len(c.spec.AccessModes) == 0:
		return "the claim has no access modes"
	}
	req := c.request()
	if req.IsZero() {
		return "the claim requests no storage"
	}
	return ""
}

// storageCheck: every claim of the app that is not Bound can bind, to an Available PV or
// through a StorageClass, or (with NFS configured) to a PV the nfs check creates.
type storageCheck struct{ e *env }

func (c *storageCheck) Name() string { return "storage" }

func (c *storageCheck) Run(ctx context.Context) []Finding {
	plan := c.e.storagePlan(ctx)
	if plan.err != nil {
		return []Finding{{Status: Warn, Finding: fmt.Sprintf("cannot read the app's claims and the cluster's volumes: %v", plan.err),
			Remedy: "grant list on persistentvolumes and storageclasses (cluster-wide) and get on the app's persistentvolumeclaims"}}
	}
	if len(plan.claims) == 0 {
		return []Finding{{Status: OK, Finding: "the app has no PersistentVolumeClaims"}}
	}
	var out []Finding
	for i := range plan.claims {
		out = append(out, claimFinding(&plan.claims[i], c.e.opts.NFS != nil))
	}
	return out
}

// need writes what a claim asks for: "katib/katib-mysql needs 10Gi ReadWriteOnce, storageClassName ”".
func (p *claimPlan) need() string {
	req := p.request()
	class := fmt.Sprintf("storageClassName '%s'", p.class)
	if !p.classSet {
		if p.class == "" {
			class = "no storageClassName and no default StorageClass"
		} else {
			class = fmt.Sprintf("no storageClassName (default StorageClass '%s')", p.class)
		}
	}
	mode := ""
	if m := volumeMode(p.spec.VolumeMode); m != defaultFilesystemStr {
		mode = ", volumeMode " + m
	}
	return fmt.Sprintf("%s needs %s %s, %s%s", p.key(), req.String(), describeModes(p.spec.AccessModes), class, mode)
}

func claimFinding(p *claimPlan, nfs bool) Finding {
	switch p.outcome {
	case outcomeBound:
		return Finding{Status: OK, Finding: fmt.Sprintf("%s is Bound to PV %s", p.key(), p.pv)}
	case outcomeLost:
		return Finding{Status: Fail, Finding: fmt.Sprintf("%s is Lost: its PV %s is gone", p.key(), p.pv),
			Remedy: fmt.Sprintf("recreate PV %s from its backup, or delete the claim (kubectl delete pvc -n %s %s) so that apply creates it again", p.pv, p.namespace, p.name)}
	case outcomeStatic:
		how := "will bind to Available PV " + p.pv
		if p.reserved {
			how = "will bind to PV " + p.pv + ", reserved for it"
		}
		return Finding{Status: OK, Finding: p.need() + ": " + how}
	case outcomeDynamic:
		return Finding{Status: OK, Finding: fmt.Sprintf("%s: StorageClass '%s' provisions it (provisioner %s)", p.need(), p.class, p.provisioner)}
	}
	var why string
	switch {
	case p.spec.VolumeName != "":
		why = fmt.Sprintf("the PV it names, %s, does not exist, is reserved for another claim or does not fit", p.spec.VolumeName)
	case p.scMissing:
		why = fmt.Sprintf("StorageClass '%s' does not exist and no Available PV of that class matches", p.class)
	case p.class != "":
		why = fmt.Sprintf("StorageClass '%s' provisions nothing (%s) and no Available PV of that class matches", p.class, noProvisioner)
	default:
		why = "no Available PV matches"
	}
	if m := p.miss.String(); m != "" {
		why += "; " + m
	}
	finding := p.need() + " — " + why
	if nfs && p.nfsProblem == "" {
		return Finding{Status: OK, Finding: finding + ": the nfs check creates PV " + nfsVolumeName(p.namespace, p.name) + " for it"}
	}
	if nfs {
		return Finding{Status: Fail, Finding: finding + "; no NFS PV either: " + p.nfsProblem,
			Remedy: "create a matching PersistentVolume by hand, or change the claim"}
	}
	req := p.request()
	remedy := fmt.Sprintf("create a PersistentVolume with storageClassName '%s', at least %s, %s; or pass --nfs-server HOST --nfs-path /export (or set spec.storage.nfs) to have kfdeploy create an NFS PV",
		p.class, req.String(), describeModes(p.spec.AccessModes))
	if !p.classSet && p.class == "" {
		remedy += "; or install a default StorageClass"
	}
	return Finding{Status: Fail, Finding: finding, Remedy: remedy}
}
