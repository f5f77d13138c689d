package preflight

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/pkg/config"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
)

const (
	// nfsPort is where NFS (v4, and v3 with a fixed port) listens.
	nfsPort = "2049"
	// nfsDialTimeout keeps an unreachable server from stalling the whole preflight.
	nfsDialTimeout = 2 * time.Second
	// labelManagedBy marks the PVs kfdeploy created. They deliberately do not carry the
	// ApplySet part-of label: they are no members of the app, so apply never prunes them and
	// delete keeps them, like the claims' data.
	labelManagedBy    = "app.kubernetes.io/managed-by"
	annotationClaim   = "kfdeploy.dev/claim"
	maxObjectNameLen  = 253
	volumeNamePrefix  = "kfdeploy-"
	nameHashHexLength = 10
)

// nfsCheck creates an NFS PersistentVolume for each claim with no other way to bind, when NFS
// is configured: the PVs an operator of Kubeflow v0.3 wrote by hand. It is the one check that
// changes the cluster.
type nfsCheck struct {
	env     *env
	mu      sync.Mutex
	created []Volume
}

func (c *nfsCheck) Name() string { return "nfs" }

// CreatedVolumes lists the PVs created (or, in a dry run, planned) by the last Run.
func (c *nfsCheck) CreatedVolumes() []Volume {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Volume(nil), c.created...)
}

func (c *nfsCheck) Run(ctx context.Context) []Finding {
	nfs := c.env.opts.NFS
	if nfs == nil {
		return []Finding{{Status: OK, Finding: "NFS not configured: preflight creates no PersistentVolumes (--nfs-server and --nfs-path, or spec.storage.nfs, let it create NFS PVs for claims that cannot bind)"}}
	}
	findings := []Finding{reachNFS(ctx, nfs.Server)}
	plan := c.env.storagePlan(ctx)
	if plan.err != nil {
		return append(findings, Finding{Status: Warn, Finding: "no NFS PVs created: the claims and volumes could not be read (see storage)",
			Remedy: "fix the storage check's access first"})
	}
	n := 0
	for i := range plan.claims {
		p := &plan.claims[i]
		if p.outcome != outcomeNeedsPV || p.nfsProblem != "" {
			continue
		}
		n++
		findings = append(findings, c.create(ctx, nfs, p))
	}
	if n == 0 {
		findings = append(findings, Finding{Status: OK, Finding: fmt.Sprintf("NFS %s:%s configured; no claim needs an NFS PV (preflight creates one only for a claim with no other way to bind)", nfs.Server, nfs.Path)})
	}
	return findings
}

// reachNFS dials the server's NFS port from here. Nodes may reach a server that kfdeploy's
// machine cannot, so a failure is a warning only.
func reachNFS(ctx context.Context, server string) Finding {
	addr := net.JoinHostPort(server, nfsPort)
	d := net.Dialer{Timeout: nfsDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Finding{Status: Warn, Finding: fmt.Sprintf("NFS server %s does not answer from here: %v", addr, unwrapDial(err)),
			Remedy: fmt.Sprintf("check that %s serves NFS and that the nodes can reach it (this machine may not need to)", server)}
	}
	_ = conn.Close()
	return Finding{Status: OK, Finding: fmt.Sprintf("NFS server %s answers from here", addr)}
}

// unwrapDial drops the "dial tcp host:port:" prefix the finding already says.
func unwrapDial(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// create makes the PV for one claim; an existing PV of the same name reserved for the same
// claim counts as done, so re-running creates nothing twice.
func (c *nfsCheck) create(ctx context.Context, nfs *config.NFS, p *claimPlan) Finding {
	pv := nfsVolume(c.env.app, nfs, p)
	req := p.request()
	vol := Volume{Name: pv.Name, Claim: p.key(), Server: nfs.Server, Path: pv.Spec.NFS.Path,
		Capacity: req.String(), AccessModes: modeStrings(pv.Spec.AccessModes), StorageClassName: pv.Spec.StorageClassName, DryRun: c.env.opts.DryRun}
	what := fmt.Sprintf("PV %s (nfs %s:%s, %s %s, storageClassName '%s', Retain) reserved for %s",
		pv.Name, nfs.Server, vol.Path, vol.Capacity, describeModes(pv.Spec.AccessModes), vol.StorageClassName, p.key())
	remedy := fmt.Sprintf("make sure %s exports %s and the directory exists (mkdir -p on the server): the PV does not create it", nfs.Server, vol.Path)
	if c.env.opts.DryRun {
		c.record(vol)
		return Finding{Status: OK, Finding: "dry run: would create " + what, Remedy: remedy}
	}
	pvs := c.env.client.Typed.CoreV1().PersistentVolumes()
	_, err := pvs.Create(ctx, pv, metav1.CreateOptions{FieldManager: inventory.FieldManager})
	switch {
	case err == nil:
		c.record(vol)
		return Finding{Status: OK, Finding: "created " + what, Remedy: remedy}
	case apierrors.IsAlreadyExists(err):
		live, getErr := pvs.Get(ctx, pv.Name, metav1.GetOptions{})
		if getErr == nil && reservedFor(live, &p.claim) {
			return Finding{Status: OK, Finding: fmt.Sprintf("PV %s exists, reserved for %s", pv.Name, p.key())}
		}
		return Finding{Status: Fail, Finding: fmt.Sprintf("cannot create PV %s for %s: a PV of that name exists and is not reserved for the claim", pv.Name, p.key()),
			Remedy: fmt.Sprintf("delete PV %s if it is a leftover (kubectl delete pv %s), or create a PV for the claim by hand", pv.Name, pv.Name)}
	case apierrors.IsForbidden(err):
		return Finding{Status: Fail, Finding: fmt.Sprintf("cannot create PV %s for %s: forbidden", pv.Name, p.key()),
			Remedy: "grant create on persistentvolumes (cluster-wide), or have an admin create the PV"}
	default:
		return Finding{Status: Fail, Finding: fmt.Sprintf("cannot create PV %s for %s: %v", pv.Name, p.key(), err),
			Remedy: "run preflight again, or create the PV by hand"}
	}
}

func (c *nfsCheck) record(v Volume) {
	c.mu.Lock()
	c.created = append(c.created, v)
	c.mu.Unlock()
}

// nfsVolume is the PV for a claim: capacity and access modes from the claim, its class (or ”),
// reclaim policy Retain, pre-bound to the claim by claimRef, labelled as kfdeploy's.
func nfsVolume(app string, nfs *config.NFS, p *claimPlan) *corev1.PersistentVolume {
	labels := map[string]string{inventory.LabelApp: app, labelManagedBy: "kfdeploy"}
	if p.spec.Selector != nil {
		for k, v := range p.spec.Selector.MatchLabels {
			labels[k] = v // the binder checks the selector of a claim that names no volume
		}
	}
	fs := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        nfsVolumeName(p.namespace, p.name),
			Labels:      labels,
			Annotations: map[string]string{annotationClaim: p.key()},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: p.request()},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), p.spec.AccessModes...),
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              p.class,
			VolumeMode:                    &fs,
			ClaimRef: &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: p.namespace, Name: p.name},
			PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{
				Server: nfs.Server,
				Path:   nfsPath(nfs.Path, p.namespace, p.name),
			}},
		},
	}
}

// nfsPath is <export>/<namespace>-<claim>.
func nfsPath(export, namespace, claim string) string {
	return path.Join(export, namespace+"-"+claim)
}

// nfsVolumeName is kfdeploy-<namespace>-<claim>, deterministic so that a second run finds the
// PV of the first; a name over 253 characters is cut and ends in a hash of the claim.
func nfsVolumeName(namespace, claim string) string {
	name := volumeNamePrefix + namespace + "-" + claim
	if len(name) <= maxObjectNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(namespace + "/" + claim))
	hash := hex.EncodeToString(sum[:])[:nameHashHexLength]
	cut := strings.TrimRight(name[:maxObjectNameLen-nameHashHexLength-1], "-.")
	return cut + "-" + hash
}

func modeStrings(modes []corev1.PersistentVolumeAccessMode) []string {
	out := make([]string, len(modes))
	for i, m := range modes {
		out[i] = string(m)
	}
	return out
}
