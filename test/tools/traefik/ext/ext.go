// Package ext stands in for Traefik's github.com/traefik/traefik/dynamic/ext module, which
// Traefik's go.mod replaces with a directory of its repository that its module zip leaves out.
// Traefik v3.7.13 embeds ext.HTTP and ext.Router (pkg/config/dynamic/http_config.go) as
// extension points of its dynamic configuration; in the open-source build both are empty.
package ext

// HTTP is embedded in Traefik's dynamic HTTP configuration.
type HTTP struct{}

// Router is embedded in Traefik's dynamic router configuration.
type Router struct{}
