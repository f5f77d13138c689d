// Package jsonnet embeds the built-in component library so that the binary alone is enough.
package jsonnet

import "embed"

// Library holds lib/ (imported as 'kfdeploy/<file>') and components/ (one component per
// <name>.jsonnet file or <name>/main.jsonnet directory).
//
//go:embed lib components presets.json
var Library embed.FS
