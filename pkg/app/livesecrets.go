package app

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube"
	"github.com/kfdeploy/kfdeploy/pkg/kube/inventory"
	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// SecretsReport is what apply did with the app's generated secrets before applying: the values
// secrets.yaml took from the cluster, the Secrets it replaced on request, and what the user must
// hear (a readable secrets.yaml, the certificate's state). It never holds a value.
type SecretsReport struct {
	// Adopted are the Secrets whose values in the cluster differed from secrets.yaml (or that
	// it lacked): secrets.yaml now holds the cluster's, and the cluster keeps them.
	Adopted []AdoptedSecret `json:"adopted,omitempty"`
	// Rotated are the Secrets written from secrets.yaml by request (--rotate-secret,
	// --rotate-ca), replacing what the cluster held.
	Rotated []string `json:"rotated,omitempty"`
	// Warnings (a readable secrets.yaml, a certificate that cannot be re-issued or covers less
	// than asked) and Notes (a new CA, a re-issued certificate).
	Warnings []string `json:"warnings,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// AdoptedSecret names a Secret ("namespace/name") and the keys of its data whose values
// secrets.yaml took from it.
type AdoptedSecret struct {
	Secret string   `json:"secret"`
	Keys   []string `json:"keys"`
	// Rotate is the apply flag that replaces what the cluster holds instead.
	Rotate string `json:"rotate"`
}

// SecretRotation is what an apply is asked to replace in the cluster with secrets.yaml's values.
type SecretRotation struct {
	// Secrets are "namespace/name" (or "name", in the app's namespace) of generated Secrets.
	Secrets []string
	// CA: a new CA of the app issues the gateway's certificate (users then trust the new CA).
	CA bool
}

// generatedSecret is a Secret of the manifests whose data holds placeholders.
type generatedSecret struct {
	id   string // namespace/name
	obj  *unstructured.Unstructured
	cert *certSpec // a certificate kfdeploy issues, or nil
}

// adoptLiveSecrets is apply's step for the app's generated secrets, after the cluster guard
// and before anything is written. Where the cluster already holds a generated value that
// secrets.yaml lacks or holds otherwise, the cluster's value wins and is taken into
// secrets.yaml: a checkout without the file (a CI runner) converges to the same passwords,
// and MySQL keeps accepting the ones it was initialised with. A serving certificate signed by
// the CA secrets.yaml holds is the store's to re-issue; one signed by another CA is taken with
// its key and kept as it is. Only rot names what is replaced instead. It then issues the
// certificates (with the nodes' addresses), saves secrets.yaml unless dry-run, and returns the
// app with its Secrets resolved from the result. The live values are read with one list per
// namespace of the app's Secrets (by the ApplySet label), never a get per Secret.
func adoptLiveSecrets(ctx context.Context, snap *snapshot.Snapshot, loaded *Loaded, rot SecretRotation, dryRun bool) (*Loaded, *SecretsReport, error) {
	c := snap.Client()
	rep := &SecretsReport{}
	// The webhook configurations get their caBundle below: copies, so that loaded's objects
	// stay as they were read.
	objs := withOwnCABundleTargets(loaded.generated)
	store, err := secrets.Load(loaded.Dir)
	if err != nil {
		return nil, rep, err
	}
	rep.Warnings = append(rep.Warnings, store.Warnings()...)
	gen, specs, err := generatedSecrets(objs, loaded.App.Spec.Namespace)
	if err != nil {
		return nil, rep, err
	}
	rotate, err := rotationSet(rot, gen, loaded.App.Spec.Namespace)
	if err != nil {
		return nil, rep, err
	}
	live, err := liveSecrets(ctx, c, loaded.ApplySet(), gen)
	if err != nil {
		return nil, rep, err
	}
	for _, g := range gen {
		ls, ok := live[g.id]
		if !ok || rotate[g.id] {
			continue
		}
		keys, err := adoptSecret(store, g, ls)
		if err != nil {
			return nil, rep, err
		}
		if len(keys) > 0 {
			flag := "--rotate-secret " + g.id
			if g.cert != nil && !g.cert.apiServer {
				flag = "--rotate-ca"
			}
			rep.Adopted = append(rep.Adopted, AdoptedSecret{Secret: g.id, Keys: keys, Rotate: flag})
		}
	}
	// A certificate the cluster does not serve yet (a first apply) whose CA does not cover the
	// nodes' addresses gets a new CA now, when they are known: generate's CA has vouched for
	// nothing served, and users trust the CA after this apply (kfdeploy ca).
	first := map[string]bool{}
	for _, g := range gen {
		if g.cert != nil && live[g.id] == nil {
			first[g.cert.component+"/"+g.cert.name] = true
		}
	}
	if err := ensureApplyCertificates(ctx, snap, store, specs, loaded.App.Spec.Namespace, rot.CA, rotate, first, rep); err != nil {
		return nil, rep, err
	}
	// The webhooks trust the CA of the certificates just kept or issued.
	if err := setCABundles(objs, "", store); err != nil {
		return nil, rep, err
	}
	for _, g := range gen {
		if rotate[g.id] {
			rep.Rotated = append(rep.Rotated, g.id)
		}
	}
	if !dryRun {
		if err := store.Save(); err != nil {
			return nil, rep, err
		}
	}
	resolved, err := store.Resolve(objs)
	if err != nil {
		return nil, rep, err
	}
	out := *loaded
	out.Objects = resolved
	return &out, rep, nil
}

// withOwnCABundleTargets is objs with a copy of each object setCABundles writes to.
func withOwnCABundleTargets(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o
		if _, ok := o.GetAnnotations()[annCABundle]; ok {
			out[i] = o.DeepCopy()
		}
	}
	return out
}

// generatedSecrets are the Secrets of objs whose data kfdeploy generates, in manifest order,
// and the certificates kfdeploy issues (not the user's files).
func generatedSecrets(objs []*unstructured.Unstructured, namespace string) ([]generatedSecret, []certSpec, error) {
	specs, err := certSpecs(objs, "")
	if err != nil {
		return nil, nil, err
	}
	var issued []certSpec
	byObj := map[*unstructured.Unstructured]*certSpec{}
	userFiles := map[*unstructured.Unstructured]bool{}
	for i := range specs {
		if specs[i].files == nil {
			issued = append(issued, specs[i])
			byObj[specs[i].secret] = &specs[i]
		} else {
			userFiles[specs[i].secret] = true
		}
	}
	var out []generatedSecret
	for _, o := range objs {
		if o.GetKind() != "Secret" || o.GetAPIVersion() != "v1" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
		// The user's certificate files are theirs to change: generate stored them, and apply
		// serves what they hold now.
		if userFiles[o] || !slices.ContainsFunc(slices.Collect(maps.Values(data)), secrets.HasPlaceholder) {
			continue
		}
		out = append(out, generatedSecret{id: secretNamespace(o, namespace) + "/" + o.GetName(), obj: o, cert: byObj[o]})
	}
	return out, issued, nil
}

func secretNamespace(o *unstructured.Unstructured, namespace string) string {
	if ns := o.GetNamespace(); ns != "" {
		return ns
	}
	return namespace
}

// rotationSet checks that every Secret to rotate is one the app generates; the CA's rotation
// replaces the Secrets of the certificates users trust (one only the API server trusts is
// rotated by its Secret's name).
func rotationSet(rot SecretRotation, gen []generatedSecret, namespace string) (map[string]bool, error) {
	known := map[string]bool{}
	var ids []string
	for _, g := range gen {
		known[g.id] = true
		ids = append(ids, g.id)
	}
	out := map[string]bool{}
	for _, name := range rot.Secrets {
		id := name
		if !strings.Contains(id, "/") {
			id = namespace + "/" + id
		}
		if !known[id] {
			return nil, fmt.Errorf("--rotate-secret %s: not a Secret whose values the app generates (those are: %s)", name, strings.Join(ids, ", "))
		}
		out[id] = true
	}
	if rot.CA {
		n := 0
		for _, g := range gen {
			if g.cert != nil && !g.cert.apiServer {
				out[g.id] = true
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("--rotate-ca: the app has no certificate issued by kfdeploy's CA (the gateway serves plain HTTP, or a certificate of yours)")
		}
	}
	return out, nil
}

// liveSecrets reads the app's Secrets that gen names, with one list per namespace by the
// ApplySet's member label.
func liveSecrets(ctx context.Context, c *kube.Client, set inventory.ApplySet, gen []generatedSecret) (map[string]*corev1.Secret, error) {
	wanted := map[string]bool{}
	var namespaces []string
	for _, g := range gen {
		wanted[g.id] = true
		ns, _, _ := strings.Cut(g.id, "/")
		if !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	out := map[string]*corev1.Secret{}
	for _, ns := range namespaces {
		list, err := c.Typed.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: set.Selector()})
		if err != nil {
			return nil, fmt.Errorf("read the app's Secrets in namespace %s to keep their generated values: %w", ns, err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if id := ns + "/" + s.Name; wanted[id] {
				out[id] = s
			}
		}
	}
	return out, nil
}

// adoptSecret takes live's generated values into the store where they differ, and returns
// the store keys it took. A value whose shape the manifests no longer match cannot be taken:
// apply refuses rather than replace it.
func adoptSecret(store *secrets.Store, g generatedSecret, live *corev1.Secret) ([]string, error) {
	if g.cert != nil {
		crt, key := string(live.Data[corev1.TLSCertKey]), string(live.Data[corev1.TLSPrivateKeyKey])
		if crt == "" || store.SignedByStoredCA(g.cert.component, g.cert.name, crt) {
			return nil, nil // the store's CA issues this certificate: its own is the one to serve
		}
		if g.cert.apiServer {
			return adoptIssuedCertificate(store, g, live)
		}
		changed, err := store.AdoptCertificate(g.cert.component, g.cert.name, crt, key)
		if err != nil {
			return nil, fmt.Errorf("cannot keep Secret %s: %w; nothing was applied: to replace it with a certificate from a new CA, rerun with --rotate-ca", g.id, err)
		}
		if !changed {
			return nil, nil
		}
		return []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}, nil
	}
	data, _, _ := unstructured.NestedStringMap(g.obj.Object, "stringData")
	var taken []string
	for _, k := range slices.Sorted(maps.Keys(data)) {
		v, ok := live.Data[k]
		if !ok || !secrets.HasPlaceholder(data[k]) {
			continue
		}
		keys, ok := store.Adopt(data[k], string(v))
		if !ok {
			return nil, fmt.Errorf("cannot keep Secret %s: the cluster's value of %q does not have the form the manifests give it, so %s cannot take it; nothing was applied: to replace it with the value in %s, rerun with --rotate-secret %s",
				g.id, k, secrets.FileName, secrets.FileName, g.id)
		}
		if len(keys) > 0 {
			taken = append(taken, k)
		}
	}
	return taken, nil
}

// apiServerRenewBefore is how long before it expires a certificate only the API server trusts,
// taken from the cluster without its CA's key, is replaced by one from a new CA: no user has to
// trust that CA, and the webhooks stop working when the certificate expires.
const apiServerRenewBefore = 30 * 24 * time.Hour

// expiringWithoutCAKey reports whether s's certificate was taken from the cluster without the
// key of its CA and expires within apiServerRenewBefore (or cannot be read).
func expiringWithoutCAKey(store *secrets.Store, s certSpec) bool {
	if !store.CAKeyMissing(s.component, s.name) {
		return false
	}
	c, err := store.Certificate(s.component, s.name)
	return err != nil || time.Until(c.NotAfter) < apiServerRenewBefore
}

// adoptIssuedCertificate is adoptSecret for a certificate only the API server trusts: the
// cluster's is kept with the CA it is served with (ca.crt), which the webhooks' caBundle then
// names. One served without its CA cannot be given to the API server, and one about to expire
// could not be renewed without its CA's key: the store's replaces either.
func adoptIssuedCertificate(store *secrets.Store, g generatedSecret, live *corev1.Secret) ([]string, error) {
	crt, key, ca := string(live.Data[corev1.TLSCertKey]), string(live.Data[corev1.TLSPrivateKeyKey]), string(live.Data[caCertKey])
	if ca == "" {
		return nil, nil
	}
	if b, _ := pem.Decode([]byte(crt)); b != nil {
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && time.Until(c.NotAfter) < apiServerRenewBefore {
			return nil, nil
		}
	}
	changed, err := store.AdoptIssuedCertificate(g.cert.component, g.cert.name, crt, key, ca)
	if err != nil {
		return nil, fmt.Errorf("cannot keep Secret %s: %w; nothing was applied: to replace it with a certificate from a new CA, rerun with --rotate-secret %s", g.id, err, g.id)
	}
	if !changed {
		return nil, nil
	}
	return []string{caCertKey, corev1.TLSCertKey, corev1.TLSPrivateKeyKey}, nil
}

// ensureApplyCertificates issues the certificates that kfdeploy's CA signs, covering the
// nodes' addresses where asked (known only to the cluster); rotateCA first replaces the CA of
// those users trust, and so does a first apply (first: component/name of certificates the
// cluster does not serve yet); a certificate only the API server trusts gets a new CA when its
// Secret is rotated (rotate: ids).
func ensureApplyCertificates(ctx context.Context, snap *snapshot.Snapshot, store *secrets.Store, specs []certSpec, namespace string, rotateCA bool, rotate, first map[string]bool, rep *SecretsReport) error {
	var addrs []string
	for _, s := range specs {
		if s.withNodes && addrs == nil {
			var err error
			if addrs, err = nodeAddresses(ctx, snap); err != nil {
				return err
			}
		}
		req := s.request
		if s.withNodes {
			req.NodeAddresses = addrs
		}
		isFirst := first[s.component+"/"+s.name] && !store.CAKeyMissing(s.component, s.name) &&
			!store.CAPermits(s.component, s.name, req)
		rotated := (rotateCA && !s.apiServer) ||
			(s.apiServer && (rotate[secretNamespace(s.secret, namespace)+"/"+s.secret.GetName()] || expiringWithoutCAKey(store, s)))
		if rotated || isFirst {
			store.RotateCA(s.component, s.name)
		}
		out, err := store.EnsureCertificate(s.component, s.name, req)
		if err != nil {
			return err
		}
		phase := phaseApply
		if isFirst && !rotated {
			phase = phaseFirstApply
		}
		w, n := certNotices(s, secretNamespace(s.secret, namespace), store, out, phase)
		rep.Warnings, rep.Notes = append(rep.Warnings, w...), append(rep.Notes, n...)
	}
	return nil
}
