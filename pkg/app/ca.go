package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kfdeploy/kfdeploy/pkg/secrets"
)

// CACertificate returns the PEM of the CA that issued the app's generated certificates (the
// gateway's), for users to trust; never a key; and the warnings about secrets.yaml (its mode).
// It reads the generated manifests to learn which certificates the app has, and the app's
// secret store for the CA.
func CACertificate(appDir string) (string, []string, error) {
	pem, store, err := caCertificate(appDir)
	if store == nil {
		return pem, nil, err
	}
	return pem, store.Warnings(), err
}

func caCertificate(appDir string) (string, *secrets.Store, error) {
	objs, err := LoadManifests(appDir)
	if err != nil {
		return "", nil, err
	}
	specs, err := certSpecs(objs, "")
	if err != nil {
		return "", nil, err
	}
	// A CA that only the API server trusts (a webhook's) is not the users' to trust.
	specs = slices.DeleteFunc(specs, func(s certSpec) bool { return s.apiServer })
	if len(specs) == 0 {
		return "", nil, fmt.Errorf("the app has no certificate issued by kfdeploy: the gateway serves plain HTTP (ambassador tls: false) or a Secret of your own (tlsSecretName)")
	}
	store, err := secrets.Load(appDir)
	if err != nil {
		return "", nil, err
	}
	var out []string
	for _, s := range specs {
		if s.files != nil {
			return "", store, fmt.Errorf("the gateway serves your certificate (%s): trust its issuer; kfdeploy has no CA for it", strings.Join(s.files, ", "))
		}
		pem, err := store.CACertificate(s.component, s.name)
		if err != nil {
			return "", store, err
		}
		if !slices.Contains(out, pem) {
			out = append(out, pem)
		}
	}
	return strings.Join(out, ""), store, nil
}
