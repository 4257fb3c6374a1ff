package engine

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		kind, name string
		ok         bool
	}{
		{"instance", "web1", true},
		{"instance", "a", true},
		{"instance", "web-1", true},
		{"instance", "1web", false},
		{"instance", "web-", false},
		{"instance", "-web", false},
		{"instance", "web_1", false},
		{"instance", "web.1", false},
		{"instance", "", false},
		{"instance", "a" + strings.Repeat("b", 62), true},
		{"instance", "a" + strings.Repeat("b", 63), false},
		{"instance", "wéb", false},
		{"pool", "fast", true},
		{"pool", "0fast", true},
		{"pool", "fast_1.x-y", true},
		{"pool", ".fast", false},
		{"pool", "fa..st", false},
		{"pool", "fast/x", false},
		{"pool", strings.Repeat("p", 63), true},
		{"pool", strings.Repeat("p", 64), false},
		{"snapshot", "snap0", true},
		{"snapshot", "before-upgrade_2.1", true},
		{"snapshot", "_x", false},
		{"snapshot", "a b", false},
		{"alias", "debian/12", true},
		{"alias", "images:debian/12", true},
		{"alias", "/debian", false},
		{"alias", "debian/../x", false},
		{"alias", strings.Repeat("a", 128), true},
		{"alias", strings.Repeat("a", 129), false},
		{"nonsense", "x", false},
	} {
		if err := checkName(c.kind, c.name); (err == nil) != c.ok {
			t.Errorf("checkName(%q, %q) = %v, want ok=%v", c.kind, c.name, err, c.ok)
		}
	}
}
