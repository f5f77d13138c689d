package preflight

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
)

// clusterCheck: the API server answers and its version is one kfdeploy supports.
type clusterCheck struct{ e *env }

func (c *clusterCheck) Name() string { return "cluster" }
func (c *clusterCheck) gate()        {}

func (c *clusterCheck) Run(ctx context.Context) []Finding {
	host := c.e.client.Config.Host
	info, err := c.e.client.ServerVersion(ctx)
	if err != nil {
		return []Finding{{Status: Fail, Finding: err.Error(),
			Remedy: "start the cluster or point kfdeploy at it with --kubeconfig, --context or KUBECONFIG"}}
	}
	return []Finding{versionFinding(host, info.GitVersion)}
}

// versionFinding judges a server's version against the supported range.
func versionFinding(host, gitVersion string) Finding {
	supported := fmt.Sprintf("supported: v1.%d–v1.%d", MinMinor, MaxMinor)
	v, err := version.ParseGeneric(gitVersion)
	if err != nil {
		return Finding{Status: Warn, Finding: fmt.Sprintf("API server %s answers, but its version %q cannot be read (%s)", host, gitVersion, supported),
			Remedy: "check that this is a Kubernetes API server"}
	}
	finding := fmt.Sprintf("API server %s answers, Kubernetes %s (%s)", host, gitVersion, supported)
	switch {
	case v.Major() < 1 || (v.Major() == 1 && v.Minor() < MinMinor):
		return Finding{Status: Fail, Finding: finding, Remedy: fmt.Sprintf("upgrade the cluster to Kubernetes v1.%d or later", MinMinor)}
	case v.Major() > 1 || v.Minor() > MaxMinor:
		return Finding{Status: Warn, Finding: finding + ": newer than kfdeploy was tested with",
			Remedy: "check the release notes of kfdeploy for support of this version"}
	}
	return Finding{Status: OK, Finding: finding}
}
