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
// which is what the cluster resolves such a reference by. The prelude's shell lines run before
// the first copy.
func WriteSkopeoScript(w io.Writer, header, prelude []string, copies []Copy) error {
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
	for _, l := range prelude {
		p("%s\n", l)
	}
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

// MirrorHost is the registry host of a mirror prefix (registry.example.com:5000/kubeflow →
// registry.example.com:5000).
func MirrorHost(mirror string) (string, error) {
	m, err := ParseMirror(mirror)
	if err != nil {
		return "", err
	}
	named, err := reference.ParseNamed(m + "/image")
	if err != nil {
		return "", fmt.Errorf("mirror registry %q: %w", mirror, err)
	}
	return reference.Domain(named), nil
}

// LoginCheck is a shell line that stops a copy script, before its first copy, when skopeo has
// no login for host (skopeo login --get-login), saying what to run. It never reads or prints a
// credential: --get-login answers with the user name only, which the line discards.
func LoginCheck(host, why string) string {
	return fmt.Sprintf("skopeo login --get-login %s >/dev/null 2>&1 || { echo 'no login to %s: run skopeo login %s first (%s)' >&2; exit 1; }", host, host, host, why)
}
