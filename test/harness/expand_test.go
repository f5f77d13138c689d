package harness

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "PORT": "8443", "EMPTY": ""}
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "x"},
		{"--port=$(PORT)", "--port=8443"},
		{"$(A)$(A)-$(PORT)", "xx-8443"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$x"},
		{"$(UNDEFINED)", "$(UNDEFINED)"},
		{"$(EMPTY)|", "|"},
		{"$(A", "$(A"},
		{"cost $5", "cost $5"},
		{"end$", "end$"},
		{"$()", "$()"},
	} {
		if got := expand(c.in, mapLookup(vars)); got != c.want {
			t.Errorf("expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
