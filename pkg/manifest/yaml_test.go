package manifest

import (
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// unmarshalObject gives what sigs.k8s.io/yaml's Unmarshal gives (its JSON round trip), values
// and errors, for what YAML 1.1 and that round trip make of scalars and keys.
func TestUnmarshalObjectIsTheJSONRoundTrip(t *testing.T) {
	docs := []string{
		"",
		"# only a comment\n",
		"null\n",
		"a: 1\nb: -2\nc: 1.5\nd: -0.0\ne: 1e300\nf: 0x1F\ng: 0o17\nh: 017\ni: 1_000\nj: .5\n",
		"big: 12345678901234567890\nhuge: 123456789012345678901234567890\nmin: -9223372036854775808\n",
		"t: true\nf: false\ny: yes\nn: no\non: on\noff: off\nY: Y\n",
		"n1: null\nn2: ~\nn3:\n",
		"ts: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\n",
		"s: \"<b>&amp;</b>\"\nu: \"\\u2028 é ✓\"\nq: 'it''s'\nl: |\n  line\n  two\n",
		"bin: !!binary aGVsbG8=\n",
		"badbin: !!binary //79\n",
		"1: one\n2.5: two\ntrue: three\n-3: four\n",
		".inf: x\n",
		"a: .inf\n",
		"a: .nan\n",
		"base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  z: 3\n",
		"list: [1, {a: [true, null, 2.0]}, [], {}]\n",
		"- a\n- b\n",
		"just a string\n",
		"a: [\n",
		"a: b\na: c\n",
		"? [a, b]\n: c\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {app: x}\ndata:\n  port: \"80\"\n",
	}
	for _, doc := range docs {
		got, gotErr := unmarshalObject([]byte(doc))
		var want map[string]any
		wantErr := yaml.Unmarshal([]byte(doc), &want)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("%q: error %v, want %v", doc, gotErr, wantErr)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %#v\nwant %#v", doc, got, want)
		}
	}
	// Keys that collide once they are JSON's strings: sigs.k8s.io/yaml keeps either value (its
	// conversion walks a Go map), so only that one of them is kept can be asserted.
	got, err := unmarshalObject([]byte("1: one\n\"1\": again\n"))
	if v := got["1"]; err != nil || len(got) != 1 || (v != "one" && v != "again") {
		t.Errorf("colliding keys: %#v, %v; want one key \"1\" with one of the values", got, err)
	}
}
