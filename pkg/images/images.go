// Package images names the container images an app pulls and rewrites them for a mirror
// registry: `<mirror>/<path>` keeps each image's path below its registry, with its tag and
// digest. It parses references with github.com/distribution/reference, the parser of the
// container tools themselves, and never talks to a registry.
package images

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Kinds of image use.
const (
	// Workload: an image of a pod spec the app applies.
	Workload = "workload"
	// Runtime: an image a controller of the app injects or starts at run time, named in its
	// configuration (flags, ConfigMaps).
	Runtime = "runtime"
	// Test: an image `kfdeploy test` runs.
	Test = "test"
)

// Normalize returns the full form of an image reference: `mysql:8` is
// `docker.io/library/mysql:8`.
func Normalize(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid image reference: %w", image, err)
	}
	return named.String(), nil
}

// ParseMirror checks a mirror prefix: a registry host (with a dot or a port, or localhost)
// and an optional path, without tag or digest, e.g. registry.example.com:5000/kubeflow.
func ParseMirror(mirror string) (string, error) {
	m := strings.TrimSuffix(mirror, "/")
	const hint = "expected a registry host and an optional path, e.g. registry.example.com/mirror"
	if m == "" {
		return "", fmt.Errorf("mirror registry is empty: %s", hint)
	}
	// ParseNamed refuses names that are not already in full form, so a prefix without a
	// registry host ("mirror", which would mean docker.io/library/mirror) fails here.
	probe := m + "/image"
	named, err := reference.ParseNamed(probe)
	if err != nil || named.String() != probe {
		return "", fmt.Errorf("mirror registry %q is not a registry prefix: %s", mirror, hint)
	}
	domain := reference.Domain(named)
	if !strings.ContainsAny(domain, ".:") && domain != "localhost" {
		return "", fmt.Errorf("mirror registry %q does not start with a registry host: %s", mirror, hint)
	}
	return m, nil
}

// Rewriter maps the image a component names to the image the cluster pulls: an override
// first (spec.images.overrides), then the mirror prefix (spec.images.registry). An image
// already under the mirror stays as it is.
type Rewriter struct {
	mirror    string
	overrides map[string]string // normalized original → replacement as written
}

// NewRewriter checks the mirror and the overrides. An override's replacement may not itself
// be overridden (a chain would make the result depend on the order of rewrites).
func NewRewriter(mirror string, overrides map[string]string) (*Rewriter, error) {
	r := &Rewriter{overrides: map[string]string{}}
	var errs []error
	if mirror != "" {
		m, err := ParseMirror(mirror)
		if err != nil {
			errs = append(errs, err)
		}
		r.mirror = m
	}
	for _, from := range slices.Sorted(maps.Keys(overrides)) {
		to := overrides[from]
		nf, err := Normalize(from)
		if err != nil {
			errs = append(errs, fmt.Errorf("override of %q: %w", from, err))
			continue
		}
		if _, err := Normalize(to); err != nil {
			errs = append(errs, fmt.Errorf("override of %q: %w", from, err))
			continue
		}
		if prev, dup := r.overrides[nf]; dup {
			errs = append(errs, fmt.Errorf("image %s is overridden twice (%s and %s)", nf, prev, to))
		}
		r.overrides[nf] = to
	}
	for from, to := range r.overrides {
		if nt, _ := Normalize(to); nt != from {
			if again, ok := r.overrides[nt]; ok {
				errs = append(errs, fmt.Errorf("override of %s names %s, which is overridden too (by %s): name the final image", from, to, again))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Enabled reports whether the rewriter changes anything.
func (r *Rewriter) Enabled() bool { return r != nil && (r.mirror != "" || len(r.overrides) > 0) }

// Mirror is the mirror prefix, "" without one.
func (r *Rewriter) Mirror() string {
	if r == nil {
		return ""
	}
	return r.mirror
}

// Source is the image to copy into the mirror for image: its override, or image itself.
func (r *Rewriter) Source(image string) (string, error) {
	n, err := Normalize(image)
	if err != nil {
		return "", err
	}
	if r != nil {
		if to, ok := r.overrides[n]; ok {
			return to, nil
		}
	}
	return image, nil
}

// Rewrite returns the image the cluster pulls instead of image.
func (r *Rewriter) Rewrite(image string) (string, error) {
	src, err := r.Source(image)
	if err != nil {
		return "", err
	}
	if r.Mirror() == "" {
		return src, nil
	}
	return Under(r.mirror, src)
}

// Under names image in mirror: mirror + the image's path below its registry + its tag and
// digest. An image already under mirror is returned unchanged.
func Under(mirror, image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid image reference: %w", image, err)
	}
	if strings.HasPrefix(named.String(), mirror+"/") {
		return image, nil
	}
	out := mirror + "/" + reference.Path(named)
	if t, ok := named.(reference.Tagged); ok {
		out += ":" + t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		out += "@" + d.Digest().String()
	}
	if _, err := reference.ParseNormalizedNamed(out); err != nil {
		return "", fmt.Errorf("image %s under mirror %s: %w", image, mirror, err)
	}
	return out, nil
}

// CollisionError says that two different images would be pulled as one.
type CollisionError struct {
	A, B, Into string
}

func (e *CollisionError) Error() string {
	return fmt.Sprintf("images %s and %s would both become %s", e.A, e.B, e.Into)
}

// Plan rewrites every image of the list; the map holds each image as written → its rewrite.
// Two images that are different (after overrides) but would land on the same name are a
// *CollisionError naming both.
func (r *Rewriter) Plan(images []string) (map[string]string, error) {
	out := map[string]string{}
	from := map[string]string{} // rewrite → normalized source that got there first
	firstImage := map[string]string{}
	var errs []error
	list := append([]string(nil), images...)
	sort.Strings(list)
	for _, img := range list {
		if _, done := out[img]; done {
			continue
		}
		to, err := r.Rewrite(img)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		src, _ := r.Source(img)
		nsrc, err := Normalize(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nto, err := Normalize(to)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := from[nto]; ok && prev != nsrc {
			errs = append(errs, &CollisionError{A: firstImage[nto], B: img, Into: to})
		} else if !ok {
			from[nto], firstImage[nto] = nsrc, img
		}
		out[img] = to
	}
	return out, errors.Join(errs...)
}
