package e2eutil

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RequestKey is one series of the API server's apiserver_request_total, reduced to what a
// test asks about (codes, clients and scopes are summed).
type RequestKey struct {
	Verb, Resource, Subresource string
}

// Requests is apiserver_request_total as read at one time, summed per RequestKey.
type Requests map[RequestKey]int

// ReadRequests scrapes the API server's /metrics and sums apiserver_request_total per verb,
// resource and subresource.
func (e *Env) ReadRequests(t testing.TB) Requests {
	t.Helper()
	raw, err := e.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read API server metrics: %v", err)
	}
	reqs, err := ParseRequests(raw)
	if err != nil {
		t.Fatalf("read API server metrics: %v", err)
	}
	return reqs
}

// ParseRequests reads apiserver_request_total from a Prometheus text exposition.
func ParseRequests(exposition []byte) (Requests, error) {
	const name = "apiserver_request_total{"
	out := Requests{}
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			return nil, fmt.Errorf("metric line %q: no closing brace", line)
		}
		labels, err := parseLabels(line[len(name):end])
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		fields := strings.Fields(line[end+1:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("metric line %q: no value", line)
		}
		n, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		out[RequestKey{Verb: labels["verb"], Resource: labels["resource"], Subresource: labels["subresource"]}] += int(n)
	}
	return out, sc.Err()
}

// parseLabels reads `a="x",b="y"` with the exposition format's escapes (\\, \", \n).
func parseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, fmt.Errorf("label list %q: want name=\"value\"", s)
		}
		key := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, fmt.Errorf("label %s: unterminated value", key)
		}
		labels[key] = val.String()
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return labels, nil
}

// Since is what was counted after earlier: the difference per series.
func (r Requests) Since(earlier Requests) Requests {
	out := Requests{}
	for k, n := range r {
		if d := n - earlier[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Count sums the requests with one of verbs on the main resource (no subresource) of one of
// resources; no resources means every resource.
func (r Requests) Count(verbs []string, resources ...string) int {
	total := 0
	for k, n := range r {
		if k.Subresource == "" && slices.Contains(verbs, k.Verb) && (len(resources) == 0 || slices.Contains(resources, k.Resource)) {
			total += n
		}
	}
	return total
}
