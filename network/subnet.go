package network

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

// Subnets are chosen and checked by reading the host's routes and
// addresses only: a candidate is never probed by sending it a packet.

// inUse is a prefix that the host routes or has an address in.
type inUse struct {
	prefix netip.Prefix
	link   int // interface index, 0 if none
	route  bool
	via    netip.Addr
}

func (u inUse) describe(names map[int]string) string {
	what := "address"
	if u.route {
		what = "route"
	}
	s := fmt.Sprintf("the host's %s %s", what, u.prefix)
	if u.via.IsValid() {
		s += " via " + u.via.String()
	}
	if name, ok := names[u.link]; ok {
		s += " on " + name
	}
	return s
}

// hostPrefixes lists the prefixes of every route of the host, in every
// table, and of every address; default routes aside, which overlap
// everything and say nothing.
func hostPrefixes() ([]inUse, error) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list the host's routes: %w", err)
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list the host's addresses: %w", err)
	}
	var used []inUse
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p := prefixOf(r.Dst)
		if !p.IsValid() || p.Bits() == 0 {
			continue
		}
		u := inUse{prefix: p.Masked(), link: r.LinkIndex, route: true}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			u.via = gw.Unmap()
		}
		used = append(used, u)
	}
	for _, a := range addrs {
		if p := prefixOf(a.IPNet); p.IsValid() {
			used = append(used, inUse{prefix: p, link: a.LinkIndex})
		}
	}
	return used, nil
}

// AutoSubnets picks a subnet for a new network: a 10.x.y.0/24 (returned
// as its gateway, 10.x.y.1/24) and a ULA /64 (fdXX:XXXX:XXXX:XXXX::1/64),
// at random among those that overlap no route and no address of the host,
// nor any prefix of avoid (the subnets of silo's networks whose bridges
// are not up now, after a reboot say).
func AutoSubnets(avoid ...netip.Prefix) (v4, v6 netip.Prefix, err error) {
	used, err := hostPrefixes()
	if err != nil {
		return v4, v6, err
	}
	for _, p := range avoid {
		used = append(used, inUse{prefix: p.Masked()})
	}
	free := func(p netip.Prefix) bool {
		for _, u := range used {
			if u.prefix.Overlaps(p) {
				return false
			}
		}
		return true
	}
	subnet := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
	}
	// Random draws pick uniformly among the free ones; when few are free,
	// a walk from a random start finds one anyway.
	const candidates = 1 << 16
	for range 256 {
		if p := subnet(rand.IntN(candidates)); free(p) {
			v4 = p
			break
		}
	}
	for i, start := 0, rand.IntN(candidates); !v4.IsValid() && i < candidates; i++ {
		if p := subnet((start + i) % candidates); free(p) {
			v4 = p
		}
	}
	if !v4.IsValid() {
		return v4, v6, errkind.Wrap(errkind.Unavailable, "no free subnet: every 10.x.y.0/24 overlaps a route or an address of the host")
	}
	for range 16 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], rand.Uint64())
		b[0] = 0xfd
		if p := netip.PrefixFrom(netip.AddrFrom16(b), 64); free(p) {
			v6 = p
			break
		}
	}
	if !v6.IsValid() {
		return v4, v6, errkind.Wrap(errkind.Unavailable, "no free IPv6 ULA /64: the host routes all of fd00::/8")
	}
	return gateway(v4), gateway(v6), nil
}

// gateway is the first address of subnet p, with p's length.
func gateway(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Addr().Next(), p.Bits())
}

// CheckSubnet refuses a network subnet (its gateway address and prefix)
// that is malformed, or that overlaps a route or an address of the host,
// those of ownBridge aside: the network's own, when it is changed.
func CheckSubnet(p netip.Prefix, ownBridge string) error {
	if !p.IsValid() {
		return errkind.Wrap(errkind.Invalid, "no subnet given")
	}
	check := validGateway6
	if p.Addr().Is4() {
		check = validGateway4
	}
	if err := check(p); err != nil {
		return err
	}
	own := -1
	if ownBridge != "" {
		if l, err := netlink.LinkByName(ownBridge); err == nil {
			own = l.Attrs().Index
		}
	}
	used, err := hostPrefixes()
	if err != nil {
		return err
	}
	for _, u := range used {
		if u.link != own && u.prefix.Overlaps(p.Masked()) {
			return errkind.Wrap(errkind.Invalid, "subnet %s overlaps %s", p.Masked(), u.describe(linkNames()))
		}
	}
	return nil
}

// linkNames maps the host's interface indexes to their names, for messages.
func linkNames() map[int]string {
	names := map[int]string{}
	links, _ := dump(netlink.LinkList)
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names
}
