package engine

import (
	"encoding/json"
	"testing"
)

// canonicalFields gives what decoding a field set and encoding it again gives, for the field
// sets an API server writes and for JSON that is not one.
func TestCanonicalFieldsIsTheDecodeAndEncode(t *testing.T) {
	reference := func(raw []byte) ([]byte, bool) {
		var set any
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, false
		}
		out, err := json.Marshal(set)
		return out, err == nil
	}
	sets := []string{
		`{"f:metadata":{"f:annotations":{"f:kfdeploy.dev/applied-hash":{}},"f:labels":{"f:app":{},"f:applyset.kubernetes.io/part-of":{}}},"f:data":{"f:index":{},"f:payload":{}}}`,
		`{"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:targetPort":{}}},"f:selector":{}}}`,
		`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`,
		`{"f:b":{},"f:a":{},"f:c":{"f:z":{},"f:y":{}}}`,
		`{".":{},"f:a":{},"i:0":{},"k:{\"a\":1}":{},"v:x":{}}`,
		`{"k:{\"port\":9}":{},"k:{\"port\":10}":{}}`,
		` { "f:a" : { } , "f:b":{"f:c":{}} } `,
		`{"f:<html>&":{},"f:é ✓":{},"f:\u2028":{},"f:\u00e9":{},"f:a\/b":{},"f:tab\t":{}}`,
		`{"k:{\"x\":\"a\\\\b\"}":{}}`,
		`{"f:a":{},"f:a":{"f:b":{}}}`,
		`{"f:a":1}`,
		`{"f:a":[]}`,
		`{"f:a":{}}x`,
		`{}`,
		`null`,
		``,
		`{"f:a":{}`,
		"{\"f:\xff\":{}}",
	}
	for _, raw := range sets {
		got, gotOK := canonicalFields([]byte(raw))
		want, wantOK := reference([]byte(raw))
		if gotOK != wantOK || string(got) != string(want) {
			t.Errorf("%s:\n got %s (%v)\nwant %s (%v)", raw, got, gotOK, want, wantOK)
		}
	}
	// The API server's field sets are re-encoded directly, not decoded and encoded.
	for _, raw := range sets[:3] {
		p := fieldsParser{in: []byte(raw)}
		if _, ok := p.object(nil); !ok || p.i != len(raw) {
			t.Errorf("%s: not re-encoded directly", raw)
		}
	}
}
