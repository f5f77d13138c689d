// Package version reports the build of the binary; the Makefile stamps the values with -ldflags.
package version

import "runtime"

// Stamped at build time with -ldflags "-X ...version.version=... -X ...version.gitCommit=...".
var (
	version   = "v0.0.0-dev"
	gitCommit = "unknown"
)

// Info is what `kfdeploy version` prints.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build information.
func Get() Info {
	return Info{Version: version, GitCommit: gitCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}
