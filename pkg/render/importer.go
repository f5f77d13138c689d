package render

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/google/go-jsonnet"
)

// libraryPrefix is how templates import the built-in helpers: import 'kfdeploy/k.libsonnet'.
const libraryPrefix = "kfdeploy/"

// builtinRoot marks paths inside the embedded library in error messages and relative imports.
const builtinRoot = "<builtin>/"

// importer resolves 'kfdeploy/…' to the embedded library, paths relative to an embedded file
// inside the embedded library, and everything else on disk (relative to the importing file,
// then the app's lib/ and components/ directories).
type importer struct {
	library fs.FS
	disk    *jsonnet.FileImporter
	cache   map[string]jsonnet.Contents
	// images, when set, rewrites the built-in image table (see imageTable).
	images map[string]string
}

func newImporter(library fs.FS, searchPaths []string) *importer {
	return &importer{
		library: library,
		disk:    &jsonnet.FileImporter{JPaths: searchPaths},
		cache:   map[string]jsonnet.Contents{},
	}
}

func (i *importer) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	switch {
	case strings.HasPrefix(importedPath, libraryPrefix):
		return i.embedded(path.Join("lib", strings.TrimPrefix(importedPath, libraryPrefix)))
	case strings.HasPrefix(importedPath, builtinRoot):
		return i.embedded(strings.TrimPrefix(importedPath, builtinRoot))
	case strings.HasPrefix(importedFrom, builtinRoot) && !path.IsAbs(importedPath):
		return i.embedded(path.Join(path.Dir(strings.TrimPrefix(importedFrom, builtinRoot)), importedPath))
	}
	return i.disk.Import(importedFrom, importedPath)
}

// embedded reads a file of the built-in library; Contents are cached so that the same path
// always yields the same Contents value, as go-jsonnet requires.
func (i *importer) embedded(name string) (jsonnet.Contents, string, error) {
	foundAt := builtinRoot + name
	if c, ok := i.cache[foundAt]; ok {
		return c, foundAt, nil
	}
	data, err := i.readEmbedded(name)
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("couldn't open import %q: not found in the built-in library", name)
	}
	c := jsonnet.MakeContentsRaw(data)
	i.cache[foundAt] = c
	return c, foundAt, nil
}
