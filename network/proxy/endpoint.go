package proxy

import (
	"net/netip"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

// Endpoint is one side of a forward: a protocol and an address with its
// port, as a proxy device's listen= and connect= give them.
type Endpoint struct {
	Proto string // tcp or udp
	Addr  netip.AddrPort
}

// ParseEndpoint reads "tcp:0.0.0.0:8080" or "udp:[::1]:53". The address
// is an IPv4 or IPv6 address, never a name: a name would be resolved on
// one side of the namespaces and used on the other.
func ParseEndpoint(s string) (Endpoint, error) {
	proto, addr, _ := strings.Cut(s, ":")
	if proto != "tcp" && proto != "udp" {
		return Endpoint{}, errkind.Wrap(errkind.Invalid, "%q: not an endpoint: give tcp:ADDRESS:PORT or udp:ADDRESS:PORT", s)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Endpoint{}, errkind.Wrap(errkind.Invalid, "%q: %q is not an address and port (an IPv6 address goes in brackets: [::1]:80)", s, addr)
	}
	if ap.Port() == 0 {
		return Endpoint{}, errkind.Wrap(errkind.Invalid, "%q: the port cannot be 0", s)
	}
	return Endpoint{Proto: proto, Addr: ap}, nil
}

func (e Endpoint) String() string {
	return e.Proto + ":" + e.Addr.String()
}

// network is the network of the net package that e is dialled or listened
// on. An IPv4 address keeps to IPv4: the net package would listen on
// 0.0.0.0 as on [::], taking the port from IPv6 too. An IPv6 wildcard is
// dual-stack, as Linux makes it by default.
func (e Endpoint) network() string {
	if e.Addr.Addr().Is4() {
		return e.Proto + "4"
	}
	return e.Proto
}
