package images

import (
	"fmt"
	"io"
	"sort"

	"github.com/distribution/reference"
)

// Copy is one image to put into the mirror.
type Copy struct {
	From string // the full reference to pull, e.g. docker.io/library/mysql:8.0.40
	To   string // its name under the mirror
}

// Copies lists what mirroring the images into mirror takes, sorted and without duplicates;
// images already under the mirror need no copy. Sources are copied from their full name.
func Copies(mirror string, sources []string) ([]Copy, error) {
	m, err := ParseMirror(mirror)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Copy
	for _, src := range sources {
		from, err := Normalize(src)
		if err != nil {
			return nil, err
		}
		to, err := Under(m, from)
		if err != nil {
			return nil, err
		}
		if to == from || seen[from] {
			continue
		}
		seen[from] = true
		out = append(out, Copy{From: from, To: to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out, nil
}

// WriteSkopeoScript writes a POSIX shell script of skopeo copies (every architecture of each
// image: --all) for an operator to pipe to sh on a machine that reaches both registries.
// skopeo refuses a reference with both a tag and a digest, so those are copied by digest,
// which is what the cluster resolves such a reference by.
func WriteSkopeoScript(w io.Writer, header []string, copies []Copy) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("#!/bin/sh\n")
	for _, h := range header {
		p("# %s\n", h)
	}
	p("set -eu\n")
	for _, c := range copies {
		flags := "--all"
		from, to := c.From, c.To
		if byDigest(from) {
			flags += " --preserve-digests"
			from, to = digestOnly(from), digestOnly(to)
		}
		p("skopeo copy %s docker://%s docker://%s\n", flags, from, to)
	}
	if err != nil {
		return fmt.Errorf("write copy script: %w", err)
	}
	return nil
}

func byDigest(image string) bool {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	_, ok := named.(reference.Digested)
	return ok
}

// digestOnly drops the tag of a reference that has a digest.
func digestOnly(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	d, ok := named.(reference.Digested)
	if !ok {
		return image
	}
	out, err := reference.WithDigest(reference.TrimNamed(named), d.Digest())
	if err != nil {
		return image
	}
	return out.String()
}
