package images

import (
	"fmt"
	"sort"
)

// containerFields are the lists of a pod spec whose entries carry an image.
var containerFields = []string{"initContainers", "containers", "ephemeralContainers"}

// Container is one image of a pod spec found in an object.
type Container struct {
	Field string // initContainers, containers or ephemeralContainers
	Name  string // the container's name
	Image string
}

// PodImages visits every container image of every pod spec inside an object — wherever it is
// nested (Deployments, Jobs, CronJobs, Pods, and custom resources that embed pod templates) —
// and sets each to what visit returns. A pod spec is recognised by its shape, a list of
// containers with images, not by the object's kind.
func PodImages(obj map[string]any, visit func(c Container) (string, error)) error {
	return walkPodImages(obj, visit)
}

func walkPodImages(v any, visit func(Container) (string, error)) error {
	switch t := v.(type) {
	case map[string]any:
		for _, field := range containerFields {
			list, ok := t[field].([]any)
			if !ok {
				continue
			}
			for _, e := range list {
				c, ok := e.(map[string]any)
				if !ok {
					continue
				}
				img, ok := c["image"].(string)
				if !ok || img == "" {
					continue
				}
				name, _ := c["name"].(string)
				to, err := visit(Container{Field: field, Name: name, Image: img})
				if err != nil {
					return err
				}
				c["image"] = to
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := walkPodImages(t[k], visit); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := walkPodImages(e, visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// RewritePodImages sets every pod-spec image of obj found in table to its rewrite; an image
// that is not in the table is an error (the table was made from the same objects).
func RewritePodImages(obj map[string]any, table map[string]string) error {
	return PodImages(obj, func(c Container) (string, error) {
		to, ok := table[c.Image]
		if !ok {
			return "", fmt.Errorf("container %s: image %s has no rewrite", c.Name, c.Image)
		}
		return to, nil
	})
}

// RewriteStrings returns v with every string that is a key of table replaced by its value,
// at any depth; other values are kept. Maps and slices are copied, v is not changed.
func RewriteStrings(v any, table map[string]string) any {
	switch t := v.(type) {
	case string:
		if to, ok := table[t]; ok {
			return to
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = RewriteStrings(e, table)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = RewriteStrings(e, table)
		}
		return out
	}
	return v
}

// PodSpecs visits every pod spec inside an object, wherever it is nested, as PodImages finds
// them: a map with a list of containers that carry images.
func PodSpecs(obj map[string]any, visit func(spec map[string]any)) {
	walkMaps(obj, func(m map[string]any) {
		for _, field := range containerFields {
			list, ok := m[field].([]any)
			if !ok {
				continue
			}
			for _, e := range list {
				if c, ok := e.(map[string]any); ok {
					if img, ok := c["image"].(string); ok && img != "" {
						visit(m)
						return
					}
				}
			}
		}
	})
}

func walkMaps(v any, visit func(map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		visit(t)
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkMaps(t[k], visit)
		}
	case []any:
		for _, e := range t {
			walkMaps(e, visit)
		}
	}
}

// AddPullSecrets appends the names to the imagePullSecrets of a pod spec or ServiceAccount
// (list holder), after the entries it has and without repeating one.
func AddPullSecrets(holder map[string]any, names []string) {
	if len(names) == 0 {
		return
	}
	list, _ := holder["imagePullSecrets"].([]any)
	have := map[string]bool{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				have[n] = true
			}
		}
	}
	for _, n := range names {
		if !have[n] {
			list = append(list, map[string]any{"name": n})
			have[n] = true
		}
	}
	holder["imagePullSecrets"] = list
}
