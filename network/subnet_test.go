package network

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
)

// spareLink makes an up interface, deleted when the test ends, to hang
// routes and addresses on: one end of a veth pair whose other end is up
// too (this kernel has no dummy driver).
func spareLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	testutil.NeedRoot(t, "interfaces and routes in a network namespace")
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.Flags = net.FlagUp
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: name + "p"}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(v) })
	if err := netlink.LinkSetUp(link(t, v.PeerName)); err != nil {
		t.Fatal(err)
	}
	return link(t, name)
}

func addRoute(t *testing.T, l netlink.Link, dst string) {
	t.Helper()
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParsePrefix(dst))}); err != nil {
		t.Fatalf("route %s: %v", dst, err)
	}
}

func TestAutoSubnetsAvoidsRoutes(t *testing.T) {
	d := spareLink(t, "spareauto")
	// Routes over all of 10.0.0.0/8 but 10.255.255.0/24: halves, each
	// half the size of the last.
	free := netip.MustParsePrefix("10.0.0.0/8")
	for bits := 9; bits <= 24; bits++ {
		lower := netip.PrefixFrom(free.Addr(), bits)
		addRoute(t, d, lower.String())
		upper := lower.Addr().As4()
		upper[(bits-1)/8] |= 0x80 >> ((bits - 1) % 8)
		free = netip.PrefixFrom(netip.AddrFrom4(upper), bits)
	}
	if free != netip.MustParsePrefix("10.255.255.0/24") {
		t.Fatalf("left %s free", free)
	}
	v4, v6, err := AutoSubnets()
	if err != nil {
		t.Fatal(err)
	}
	if v4 != netip.MustParsePrefix("10.255.255.1/24") {
		t.Errorf("IPv4 %s, want the one free subnet's gateway 10.255.255.1/24", v4)
	}
	if b := v6.Addr().As16(); !v6.Addr().Is6() || v6.Bits() != 64 || b[0] != 0xfd || v6.Addr() != v6.Masked().Addr().Next() {
		t.Errorf("IPv6 %s, want the ::1 of a ULA /64", v6)
	}
	if _, _, err := AutoSubnets(free); !errors.Is(err, errkind.Unavailable) {
		t.Errorf("with the last subnet avoided: %v, want Unavailable", err)
	}

	addRoute(t, d, "fd00::/8")
	if _, _, err := AutoSubnets(); !errors.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "ULA") {
		t.Errorf("with fd00::/8 routed: %v, want Unavailable", err)
	}
}

func TestAutoSubnetsDiffer(t *testing.T) {
	testutil.NeedRoot(t, "reading routes in a network namespace")
	seen := map[netip.Prefix]bool{}
	for range 5 {
		v4, v6, err := AutoSubnets()
		if err != nil {
			t.Fatal(err)
		}
		seen[v4], seen[v6] = true, true
	}
	if len(seen) < 8 {
		t.Errorf("5 draws gave only %d different subnets: %v", len(seen), seen)
	}
}

func TestCheckSubnet(t *testing.T) {
	d := spareLink(t, "sparecheck")
	addRoute(t, d, "10.99.0.0/16")
	if err := netlink.AddrAdd(d, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.5/24"))}); err != nil {
		t.Fatal(err)
	}
	for subnet, want := range map[string]string{
		"10.99.5.1/24":    "route 10.99.0.0/16 on sparecheck",
		"10.0.0.1/8":      "route 10.99.0.0/16 on sparecheck",
		"192.0.2.65/26":   "192.0.2.", // the address, or the route it brings
		"10.98.0.1/24":    "",
		"fd12:3::1/64":    "",
		"10.1.2.0/24":     "network or broadcast",
		"fd12:3::1/48":    "/64",
		"10.1.2.1/31":     "8 to 30 bits",
		"fd12:3:0:1::/64": "anycast",
	} {
		err := CheckSubnet(netip.MustParsePrefix(subnet), "")
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", subnet, err)
			}
			continue
		}
		if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want Invalid naming %q", subnet, err, want)
		}
	}

	n := testNet(t, "silots0", 20)
	mustEnsure(t, n)
	if err := CheckSubnet(n.IPv4, n.Bridge); err != nil {
		t.Errorf("the network's own subnet, for itself: %v", err)
	}
	if err := CheckSubnet(n.IPv6, n.Bridge); err != nil {
		t.Errorf("the network's own IPv6 subnet, for itself: %v", err)
	}
	if err := CheckSubnet(n.IPv4, "silots1"); !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), n.Bridge) {
		t.Errorf("another network's subnet: %v, want Invalid naming %s", err, n.Bridge)
	}
}
