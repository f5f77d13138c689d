package kube

import (
	"context"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfdeploy/kfdeploy/pkg/clusterid"
)

// identityNamespace is the namespace whose UID identifies a cluster: every cluster has it, and
// its UID lives as long as the cluster's etcd data.
const identityNamespace = "kube-system"

// ClusterIdentity reads the identity of the cluster this client reaches: the kube-system UID,
// with the context, server and CA fingerprint of the connection for messages.
func (c *Client) ClusterIdentity(ctx context.Context) (clusterid.Identity, error) {
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, identityNamespace, metav1.GetOptions{})
	if err != nil {
		return clusterid.Identity{}, fmt.Errorf("identify the cluster at %s (get namespace %s): %w (kfdeploy needs get on namespaces to tell clusters apart)", c.Config.Host, identityNamespace, err)
	}
	id := clusterid.Identity{Context: c.Context, Server: c.Config.Host, UID: string(ns.UID)}
	ca := c.Config.TLSClientConfig.CAData
	if len(ca) == 0 && c.Config.TLSClientConfig.CAFile != "" {
		// Only for the message: an unreadable CA file would already have failed the connection.
		ca, _ = os.ReadFile(c.Config.TLSClientConfig.CAFile)
	}
	id.CAFingerprint = clusterid.CAFingerprint(ca)
	return id, nil
}
