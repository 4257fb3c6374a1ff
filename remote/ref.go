package remote

import "strings"

// Ref is a reference split into its remote and the rest: "h2:web" is
// remote h2, name "web"; "h2:" is remote h2 with no name (the remote
// itself, as in `silo list h2:`); "h2:web/snap0" keeps "web/snap0" for the
// caller to split.
type Ref struct {
	Remote string
	Name   string
}

// IsLocal says whether the reference is to this host, reached directly.
func (r Ref) IsLocal() bool { return r.Remote == Local }

// Parse splits ref. A prefix before the first colon is a remote only if
// it names one: image aliases may hold colons, and an alias such as
// "debian:12" stays whole. A reference without a remote names the
// default one.
func (c *Config) Parse(ref string) Ref {
	if name, rest, ok := strings.Cut(ref, ":"); ok && c.Has(name) {
		return Ref{Remote: name, Name: rest}
	}
	return Ref{Remote: c.Default(), Name: ref}
}
