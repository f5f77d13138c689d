package e2eutil

import "testing"

func TestParseRequests(t *testing.T) {
	exposition := `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="scale",verb="PATCH",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="All",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="persistentvolumeclaims",scope="resource",subresource="",verb="PATCH",version="v1"} 4e+00
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="odd\"name",scope="resource",subresource="",verb="GET",version="v1"} 1
apiserver_request_duration_seconds_bucket{verb="APPLY",le="0.1"} 9
`
	got, err := ParseRequests(exposition)
	if err != nil {
		t.Fatal(err)
	}
	if n := got[Request{Verb: "APPLY", Resource: "deployments.apps"}]; n != 5 {
		t.Errorf("APPLY deployments.apps = %d, want 5 (summed over codes)", n)
	}
	if n := got[Request{Verb: "APPLY", Resource: "deployments.apps", DryRun: true}]; n != 7 {
		t.Errorf("dry-run APPLY deployments.apps = %d, want 7", n)
	}
	if n := got.Sent(); n != 16 {
		t.Errorf("APPLY+PATCH on main resources = %d, want 16 (the scale subresource left out)", n)
	}
	if n := got.Sent("persistentvolumeclaims"); n != 4 {
		t.Errorf("sent to persistentvolumeclaims = %d, want 4", n)
	}
	if n := got[Request{Verb: "GET", Resource: `odd"name`}]; n != 1 {
		t.Errorf("escaped label value not read: %v", got)
	}
	earlier := Requests{{Verb: "APPLY", Resource: "deployments.apps"}: 5, {Verb: "APPLY", Resource: "deployments.apps", DryRun: true}: 7}
	if since := got.Since(earlier); since.Sent("deployments") != 0 || since.Sent() != 4 {
		t.Errorf("Since = %v", since)
	}
	if _, err := ParseRequests(`apiserver_request_total{verb="APPLY} 1`); err == nil {
		t.Error("an unterminated label value was accepted")
	}
}
