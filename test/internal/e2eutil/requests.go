package e2eutil

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Request is one series of the API server's apiserver_request_total counter: requests of a
// verb (LIST, GET, APPLY, PATCH, CREATE, ...) on a resource ("deployments.apps", "configmaps"),
// optionally a subresource, and whether they were dry runs.
type Request struct {
	Verb        string
	Resource    string // resource.group, or resource for the core group
	Subresource string
	DryRun      bool
}

func (r Request) String() string {
	s := r.Verb + " " + r.Resource
	if r.Subresource != "" {
		s += "/" + r.Subresource
	}
	if r.DryRun {
		s += " (dry run)"
	}
	return s
}

// Requests counts requests by Request.
type Requests map[Request]int

// ScrapeRequests reads apiserver_request_total from the API server's /metrics (the client
// needs the nonResourceURL /metrics: the local cluster's admin has it).
func (e *Env) ScrapeRequests(t testing.TB) Requests {
	t.Helper()
	raw, err := e.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read the API server's /metrics: %v", err)
	}
	reqs, err := ParseRequests(string(raw))
	if err != nil {
		t.Fatalf("parse the API server's /metrics: %v", err)
	}
	return reqs
}

// ParseRequests reads the apiserver_request_total series of a Prometheus text exposition,
// summed over the labels Request does not keep (version, scope, component, code).
func ParseRequests(text string) (Requests, error) {
	out := Requests{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("metric line %q: no closing brace", line)
		}
		labels, err := parseLabels(rest[:end])
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		value, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		resource := labels["resource"]
		if g := labels["group"]; g != "" {
			resource += "." + g
		}
		r := Request{Verb: labels["verb"], Resource: resource, Subresource: labels["subresource"],
			DryRun: labels["dry_run"] != ""}
		out[r] += int(value)
	}
	return out, sc.Err()
}

// parseLabels reads `a="x",b="y"` (values may hold escaped quotes and backslashes).
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("label %q: want name=\"value\"", s)
		}
		var b strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			b.WriteByte(rest[i])
		}
		if i >= len(rest) {
			return nil, fmt.Errorf("label %s: unterminated value", name)
		}
		out[strings.TrimSpace(name)] = b.String()
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
	return out, nil
}

// Since is what was counted after before was read.
func (r Requests) Since(before Requests) Requests {
	out := Requests{}
	for k, n := range r {
		if d := n - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Only keeps the requests on the given resources ("configmaps", "deployments.apps").
func (r Requests) Only(resources ...string) Requests {
	keep := map[string]bool{}
	for _, res := range resources {
		keep[res] = true
	}
	out := Requests{}
	for k, n := range r {
		if keep[k.Resource] {
			out[k] = n
		}
	}
	return out
}

// Count sums the requests that match.
func (r Requests) Count(match func(Request) bool) int {
	total := 0
	for k, n := range r {
		if match(k) {
			total += n
		}
	}
	return total
}

// String lists the counts, one "VERB resource: n" per line, sorted.
func (r Requests) String() string {
	lines := make([]string, 0, len(r))
	for k, n := range r {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// IsWrite reports whether a verb of the counter changes what the API server stores (it counts
// creates as POST and updates as PUT).
func IsWrite(verb string) bool {
	switch verb {
	case "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION":
		return true
	}
	return false
}

// Sent sums the APPLY and PATCH requests on the main resource (no subresource) of the given
// resources, named without their group ("deployments"), or of every resource when none is
// named: what a re-apply that leaves everything unchanged must not send.
func (r Requests) Sent(resources ...string) int {
	return r.Count(func(k Request) bool {
		name, _, _ := strings.Cut(k.Resource, ".")
		return k.Subresource == "" && (k.Verb == "APPLY" || k.Verb == "PATCH") &&
			(len(resources) == 0 || slices.Contains(resources, name))
	})
}
