package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kfdeploy/kfdeploy/pkg/kube/snapshot"
	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// Annotations by which a component asks for a TLS certificate in a kubernetes.io/tls Secret.
// The component renders the Secret without data; generate issues the certificate into the app's
// secret store and puts placeholders in the Secret, which apply replaces, as with passwords.
const (
	annCertificate   = "kfdeploy.dev/certificate"                // "component/name": the store key
	annCertDNSNames  = "kfdeploy.dev/certificate-dns-names"      // comma-separated
	annCertIPs       = "kfdeploy.dev/certificate-ip-addresses"   // comma-separated
	annCertNodeAddrs = "kfdeploy.dev/certificate-node-addresses" // "true": also the nodes' addresses, known at apply
	annCertFiles     = "kfdeploy.dev/certificate-files"          // "cert,key": the user's PEM files, relative to the app directory
	// "apiserver": only the API server trusts the certificate's CA, through the caBundle of
	// webhook configurations (annCABundle), never users: the Secret also holds the CA as
	// ca.crt, 'kfdeploy ca' leaves it out, and a cluster's certificate is kept with its CA.
	annCertTrustedBy = "kfdeploy.dev/certificate-trusted-by"
	// On a webhook configuration, "component/name": every webhook's caBundle is the CA of that
	// certificate, filled in by generate and again by apply (which may re-issue it).
	annCABundle = "kfdeploy.dev/ca-bundle"
)

// trustedByAPIServer is annCertTrustedBy's one value.
const trustedByAPIServer = "apiserver"

// certSpec is one certificate a rendered Secret asks for.
type certSpec struct {
	secret    *unstructured.Unstructured
	component string
	name      string
	request   secrets.CertRequest
	withNodes bool
	files     []string
	// apiServer: only the API server trusts its CA (annCertTrustedBy).
	apiServer bool
}

// certSpecs finds the Secrets of objs that ask for a certificate; component, when set, must own
// the store key they name.
func certSpecs(objs []*unstructured.Unstructured, component string) ([]certSpec, error) {
	var out []certSpec
	for _, o := range objs {
		a := o.GetAnnotations()
		key, ok := a[annCertificate]
		if !ok || o.GetKind() != "Secret" || o.GetAPIVersion() != "v1" {
			continue
		}
		comp, name, ok := strings.Cut(key, "/")
		if !ok || comp == "" || name == "" || (component != "" && comp != component) {
			return nil, fmt.Errorf("secret %s: %s is %q, want %q/<name>", o.GetName(), annCertificate, key, component)
		}
		s := certSpec{secret: o, component: comp, name: name, withNodes: a[annCertNodeAddrs] == "true"}
		switch v, ok := a[annCertTrustedBy]; {
		case !ok:
		case v == trustedByAPIServer:
			s.apiServer = true
		default:
			return nil, fmt.Errorf("secret %s: %s is %q, want %q", o.GetName(), annCertTrustedBy, v, trustedByAPIServer)
		}
		s.request.DNSNames = splitList(a[annCertDNSNames])
		s.request.IPAddresses = splitList(a[annCertIPs])
		if len(s.request.DNSNames) > 0 {
			s.request.CommonName = s.request.DNSNames[0]
		}
		if f := splitList(a[annCertFiles]); len(f) > 0 {
			if s.apiServer {
				return nil, fmt.Errorf("secret %s: %s and %s=%s exclude each other", o.GetName(), annCertFiles, annCertTrustedBy, trustedByAPIServer)
			}
			if len(f) != 2 {
				return nil, fmt.Errorf("secret %s: %s is %q, want certfile,keyfile", o.GetName(), annCertFiles, a[annCertFiles])
			}
			s.files = f
		}
		out = append(out, s)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ensureCertificates is generate's part: for every Secret of a component that asks for a
// certificate, store the user's files or issue one (kept while its names stay the same; the
// node addresses are those of the last apply), and put placeholders into the Secret.
func ensureCertificates(appDir, component string, objs []*unstructured.Unstructured, store *secrets.Store) error {
	specs, err := certSpecs(objs, component)
	if err != nil {
		return fmt.Errorf("component %s: %w", component, err)
	}
	for _, s := range specs {
		if s.files != nil {
			if err := storeCertFiles(appDir, s, store); err != nil {
				return err
			}
		} else {
			req := s.request
			if s.withNodes {
				req.NodeAddresses = store.StoredNodeAddresses(s.component, s.name)
			}
			if _, err := store.EnsureCertificate(s.component, s.name, req); err != nil {
				return err
			}
		}
		cert, key := secrets.CertPlaceholders(s.component, s.name)
		data := map[string]string{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}
		if s.apiServer {
			data[caCertKey] = secrets.CACertPlaceholder(s.component, s.name)
		}
		if err := unstructured.SetNestedStringMap(s.secret.Object, data, "stringData"); err != nil {
			return fmt.Errorf("component %s: Secret %s: %w", component, s.secret.GetName(), err)
		}
	}
	return setCABundles(objs, component, store)
}

// caCertKey is where a Secret of a certificate trusted by the API server holds its CA.
const caCertKey = "ca.crt"

// setCABundles sets the caBundle of every webhook of the webhook configurations of objs that
// ask for one (annCABundle) to the CA that issued the certificate they name; component, when
// set, must own it.
func setCABundles(objs []*unstructured.Unstructured, component string, store *secrets.Store) error {
	for _, o := range objs {
		key, ok := o.GetAnnotations()[annCABundle]
		if !ok {
			continue
		}
		id := o.GetKind() + " " + o.GetName()
		if o.GetKind() != "ValidatingWebhookConfiguration" && o.GetKind() != "MutatingWebhookConfiguration" {
			return fmt.Errorf("%s: %s is for webhook configurations only", id, annCABundle)
		}
		comp, name, ok := strings.Cut(key, "/")
		if !ok || comp == "" || name == "" || (component != "" && comp != component) {
			return fmt.Errorf("%s: %s is %q, want %q/<name>", id, annCABundle, key, component)
		}
		pem, err := store.IssuerCertificate(comp, name)
		if err != nil {
			return fmt.Errorf("%s: caBundle: %w", id, err)
		}
		webhooks, _, err := unstructured.NestedSlice(o.Object, "webhooks")
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		for i, w := range webhooks {
			m, ok := w.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: webhook %d is not an object", id, i)
			}
			if err := unstructured.SetNestedField(m, base64.StdEncoding.EncodeToString([]byte(pem)), "clientConfig", "caBundle"); err != nil {
				return fmt.Errorf("%s: webhook %d: %w", id, i, err)
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, webhooks, "webhooks"); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	return nil
}

func storeCertFiles(appDir string, s certSpec, store *secrets.Store) error {
	var pems [2][]byte
	for i, f := range s.files {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(appDir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("component %s: read TLS file: %w (tlsCertFile and tlsKeyFile are relative to the app directory)", s.component, err)
		}
		pems[i] = data
	}
	if err := store.SetCertificate(s.component, s.name, pems[0], pems[1]); err != nil {
		return fmt.Errorf("%w: %s and %s must be a PEM certificate and its private key", err, s.files[0], s.files[1])
	}
	return nil
}

// certPhase is the step whose certificate notices are told.
type certPhase int

const (
	phaseGenerate   certPhase = iota
	phaseFirstApply           // the cluster served no certificate of the app: its CA is made now
	phaseApply                // a rotation of the CA (--rotate-ca), or a re-issue
)

// certNotices are what the user must hear about the certificate of s after EnsureCertificate
// (outcome). Warnings: a kept certificate whose CA key is missing, names the CA may not vouch
// for, a CA without constraints. Notes: a new CA, a re-issue from the same CA.
func certNotices(s certSpec, namespace string, store *secrets.Store, out secrets.CertOutcome, phase certPhase) (warnings, notes []string) {
	newCA, issued := store.Made(s.component, s.name)
	secret := namespace + "/" + s.secret.GetName()
	if s.apiServer {
		// No user trusts its CA: a new CA or certificate is news to no one.
		if out.CAKeyMissing {
			warnings = append(warnings, fmt.Sprintf("Secret %s: %s has no key of the CA that signed the served certificate, which apply took from the cluster with that CA: it stays as it is (it expires %s); to have kfdeploy issue a new one, rerun apply with --rotate-secret %s",
				secret, secrets.FileName, out.NotAfter.UTC().Format("2006-01-02"), secret))
		}
		if len(out.Outside) > 0 {
			warnings = append(warnings, fmt.Sprintf("Secret %s: the certificate's CA may vouch only for %s; %s are outside: rerun apply with --rotate-secret %s for a new CA",
				secret, store.Constraints(s.component, s.name), strings.Join(out.Outside, ", "), secret))
		}
		return warnings, nil
	}
	switch {
	case out.CAKeyMissing:
		warnings = append(warnings, fmt.Sprintf("Secret %s: %s has no key of the CA that signed the served certificate, which apply took from the cluster: it stays as it is (it expires %s) and cannot be re-issued for new names; restore %s from a backup, or rotate the CA with 'kfdeploy apply --rotate-ca' (users then trust the new CA: kfdeploy ca)",
			secret, secrets.FileName, out.NotAfter.UTC().Format("2006-01-02"), secrets.FileName))
	case newCA && phase == phaseFirstApply:
		notes = append(notes, fmt.Sprintf("Secret %s: the app's CA, vouching only for %s, issued the certificate now served: users trust it (kfdeploy ca > ca.crt)",
			secret, store.Constraints(s.component, s.name)))
	case newCA && phase == phaseApply:
		notes = append(notes, fmt.Sprintf("Secret %s: rotated the CA: a new CA of the app, vouching only for %s, issued the certificate now served; users must trust the new CA (kfdeploy ca > ca.crt) and may remove the old one",
			secret, store.Constraints(s.component, s.name)))
	case newCA:
		notes = append(notes, fmt.Sprintf("Secret %s: a new CA of the app issued its certificate; the first apply makes the CA final (with the nodes' addresses), and where the cluster already serves a certificate of this app, apply keeps that one (replace it with 'kfdeploy apply --rotate-ca')",
			secret))
	case issued:
		notes = append(notes, fmt.Sprintf("Secret %s: certificate issued from the app's CA for its current names: users keep trusting the same CA", secret))
	}
	if len(out.Outside) > 0 {
		warnings = append(warnings, fmt.Sprintf("Secret %s: the app's CA may vouch only for %s; %s are outside, so the certificate leaves them out (users keep trusting the same CA for the other names): to cover them, rotate the CA with 'kfdeploy apply --rotate-ca' (users then trust the new CA)",
			secret, store.Constraints(s.component, s.name), strings.Join(out.Outside, ", ")))
	}
	if out.Unconstrained {
		warnings = append(warnings, fmt.Sprintf("Secret %s: the app's CA has no name constraints (made by an older kfdeploy), so whoever holds %s can issue certificates that its users' browsers accept for any site: move to a constrained CA with 'kfdeploy apply --rotate-ca', then have users trust the new CA (kfdeploy ca) and remove the old one",
			secret, secrets.FileName))
	}
	return warnings, notes
}

// nodeAddresses are the InternalIP, ExternalIP and Hostname addresses of the cluster's nodes,
// sorted and without duplicates.
func nodeAddresses(ctx context.Context, snap *snapshot.Snapshot) ([]string, error) {
	nodes, err := snap.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes for the gateway's certificate: %w", err)
	}
	return addressesOf(nodes, corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName), nil
}

func addressesOf(nodes []corev1.Node, types ...corev1.NodeAddressType) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			for _, t := range types {
				if a.Type == t && a.Address != "" && !seen[a.Address] {
					seen[a.Address] = true
					out = append(out, a.Address)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
