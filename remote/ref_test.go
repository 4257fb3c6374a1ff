package remote

import "testing"

func TestParse(t *testing.T) {
	c := &Config{Remotes: map[string]*Remote{"h2": {Addr: "https://192.0.2.2:8443"}}}
	for _, tc := range []struct {
		ref, def     string
		remote, name string
	}{
		{"web", "", Local, "web"},
		{"h2:web", "", "h2", "web"},
		{"h2:", "", "h2", ""},
		{"h2:web/snap0", "", "h2", "web/snap0"},
		{"h2:web/etc/hosts", "", "h2", "web/etc/hosts"},
		{"local:web", "", Local, "web"},
		{"local:", "h2", Local, ""},
		{"web", "h2", "h2", "web"},
		{"", "", Local, ""},
		{"", "h2", "h2", ""},
		// Not a remote: an alias that holds a colon stays whole.
		{"debian:12", "", Local, "debian:12"},
		{"h3:web", "", Local, "h3:web"},
		{"h2:debian:12", "", "h2", "debian:12"},
	} {
		c.DefaultRemote = tc.def
		got := c.Parse(tc.ref)
		if got.Remote != tc.remote || got.Name != tc.name {
			t.Errorf("Parse(%q) with default %q = %+v, want {%s %s}", tc.ref, tc.def, got, tc.remote, tc.name)
		}
		if got.IsLocal() != (tc.remote == Local) {
			t.Errorf("Parse(%q).IsLocal() = %v", tc.ref, got.IsLocal())
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for in, want := range map[string]string{
		"https://192.0.2.2:8443": "https://192.0.2.2:8443",
		"192.0.2.2":              "https://192.0.2.2:8443",
		"https://[2001:db8::1]":  "https://[2001:db8::1]:8443",
		"https://h2.example/":    "https://h2.example:8443",
	} {
		if got, err := checkAddr(in); err != nil || got != want {
			t.Errorf("checkAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://192.0.2.2", "https://", "https://h/x", "unix:///x"} {
		if _, err := checkAddr(bad); err == nil {
			t.Errorf("checkAddr(%q) accepted", bad)
		}
	}
}
