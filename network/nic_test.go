package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

// bridged is the nic eth0 with host address host of n's subnets.
func bridged(n Net, hostName string, host byte) NIC {
	return NIC{
		Name: "eth0", HostName: hostName, MAC: RandomMAC(), Bridge: n.Bridge,
		IPv4: netip.PrefixFrom(addr4(n, host), n.IPv4.Bits()), Gateway4: n.IPv4.Addr(),
		IPv6: netip.PrefixFrom(addr6(n, host), 64), Gateway6: n.IPv6.Addr(),
	}
}

// handleIn is a netlink handle in the network namespace of pid.
func handleIn(t *testing.T, pid int) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// instance makes a test network, ensured, with an instance on it: a
// process in namespaces of its own, with the nic eth0, host address 10.
func instance(t *testing.T, br string, third byte) (Net, int, NIC) {
	t.Helper()
	n := testNet(t, br, third)
	mustEnsure(t, n)
	pid := sandbox(t, true)
	nic := bridged(n, "v"+br, 10)
	if err := Attach(pid, nic); err != nil {
		t.Fatal(err)
	}
	return n, pid, nic
}

func TestAttachBridged(t *testing.T) {
	n, pid, nic := instance(t, "silotn0", 30)

	host := link(t, nic.HostName)
	if host.Attrs().MasterIndex != link(t, n.Bridge).Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host side %s: master %d, flags %v; want up on %s", nic.HostName, host.Attrs().MasterIndex, host.Attrs().Flags, n.Bridge)
	}
	h := handleIn(t, pid)
	inside, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if inside.Attrs().HardwareAddr.String() != nic.MAC.String() || inside.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0: MAC %s, flags %v; want %s, up", inside.Attrs().HardwareAddr, inside.Attrs().Flags, nic.MAC)
	}
	if lo, err := h.LinkByName("lo"); err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo not up: %v", err)
	}
	addrs, err := h.AddrList(inside, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Prefix]bool{}
	for _, a := range addrs {
		have[prefixOf(a.IPNet)] = a.Flags&unix.IFA_F_TENTATIVE == 0
	}
	for _, p := range []netip.Prefix{nic.IPv4, nic.IPv6} {
		if !have[p] {
			t.Errorf("eth0 lacks %s, or it is tentative: %v", p, have)
		}
	}
	for _, gw := range []netip.Addr{nic.Gateway4, nic.Gateway6} {
		family := netlink.FAMILY_V4
		if gw.Is6() {
			family = netlink.FAMILY_V6
		}
		routes, err := h.RouteList(inside, family)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range routes {
			found = found || (r.Dst == nil || prefixOf(r.Dst).Bits() == 0) && r.Gw.Equal(gw.AsSlice())
		}
		if !found {
			t.Errorf("no default route via %s: %v", gw, routes)
		}
	}
	for _, gw := range []netip.Addr{nic.Gateway4, nic.Gateway6} {
		if !ping(pid, netip.Addr{}, gw) {
			t.Errorf("no answer from the gateway %s", gw)
		}
	}
	rx, tx, err := Counters(pid, "eth0")
	if err != nil || rx == 0 || tx == 0 {
		t.Errorf("counters after pings: rx %d, tx %d, %v", rx, tx, err)
	}

	if err := Detach(pid, nic); err != nil {
		t.Fatal(err)
	}
	if !linkGone(nic.HostName) {
		t.Error("host side left after Detach")
	}
	if _, err := h.LinkByName("eth0"); err == nil {
		t.Error("eth0 left after Detach")
	}
	if err := Detach(pid, nic); err != nil {
		t.Errorf("Detach of a detached nic: %v", err)
	}
	if _, _, err := Counters(pid, "eth0"); !errors.Is(err, errkind.NotFound) {
		t.Errorf("counters of a detached nic: %v, want NotFound", err)
	}
}

// A second nic, on another network, joins a namespace that has its
// default routes already: it gets its addresses, and the routes stay.
func TestAttachSecondNIC(t *testing.T) {
	_, pid, first := instance(t, "silotn6", 36)
	n2 := testNet(t, "silotn7", 37)
	mustEnsure(t, n2)
	second := bridged(n2, "vsilotn7", 10)
	second.Name = "eth1"
	if err := Attach(pid, second); err != nil {
		t.Fatalf("a second nic: %v", err)
	}
	if out, err := inNS(pid, "ip", "-o", "addr", "show", "dev", "eth1"); err != nil || !strings.Contains(out, second.IPv4.String()) || !strings.Contains(out, second.IPv6.String()) {
		t.Errorf("eth1's addresses: %s %v", out, err)
	}
	for _, family := range []string{"-4", "-6"} {
		out, err := inNS(pid, "ip", family, "route", "show", "default")
		gw := first.Gateway4
		if family == "-6" {
			gw = first.Gateway6
		}
		if err != nil || strings.Count(out, "default") != 1 || !strings.Contains(out, "via "+gw.String()+" dev eth0") {
			t.Errorf("default routes %s with two nics: %s %v; want the first's alone", family, out, err)
		}
	}
	if !ping(pid, netip.Addr{}, n2.IPv4.Addr()) {
		t.Errorf("no answer from the second network's gateway %s", n2.IPv4.Addr())
	}
}

// The first nic on a new bridge has a default route from dnsmasq's router
// advertisements at once: its solicitation is answered from the bridge's
// link-local address, as router advertisements must come, even when it
// comes as soon as the bridge has its first port (here, from a nic that
// skips duplicate detection).
func TestRouterAdvertisement(t *testing.T) {
	n := testNet(t, "silotn8", 38)
	mustEnsure(t, n)
	pid := sandbox(t, true)
	if out, err := inNS(pid, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := Attach(pid, bridged(n, "vsilotn8", 10)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for {
		out, err := inNS(pid, "ip", "-6", "route", "show", "default")
		if err == nil && strings.Contains(out, "proto ra") && strings.Contains(out, "via fe80::") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no default route from a router advertisement after 4 s: %s %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAttachUndoesOnFailure(t *testing.T) {
	n := testNet(t, "silotn1", 31)
	mustEnsure(t, n)
	pid := sandbox(t, false)
	h := handleIn(t, pid)

	nic := bridged(n, "vtn1a", 10)
	nic.Bridge = "nosuchbr"
	if err := Attach(pid, nic); !errors.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), "nosuchbr") {
		t.Errorf("missing bridge: %v, want NotFound naming it", err)
	}
	if !linkGone(nic.HostName) {
		t.Error("veth left after a missing bridge")
	}

	// A default route that cannot be: it fails after the pair is made.
	nic = bridged(n, "vtn1b", 11)
	nic.Gateway4 = netip.MustParseAddr("192.0.2.1")
	if err := Attach(pid, nic); err == nil {
		t.Error("unreachable gateway: no error")
	}
	if !linkGone(nic.HostName) {
		t.Error("veth left after a failed route")
	}
	if _, err := h.LinkByName("eth0"); err == nil {
		t.Error("eth0 left inside after a failed route")
	}

	// A name taken inside: the pair is never made.
	if err := Attach(pid, bridged(n, "vtn1c", 12)); err != nil {
		t.Fatal(err)
	}
	nic = bridged(n, "vtn1d", 13)
	if err := Attach(pid, nic); !errors.Is(err, errkind.AlreadyExists) {
		t.Errorf("eth0 twice: %v, want AlreadyExists", err)
	}
	if !linkGone(nic.HostName) {
		t.Error("veth left after a name taken inside")
	}
	if _, _, err := Counters(pid, "eth0"); err != nil {
		t.Errorf("the first eth0 went with the failure of the second: %v", err)
	}
}

func TestAttachMacvlan(t *testing.T) {
	parent := spareLink(t, "sparemv")
	pid := sandbox(t, true)
	nic := NIC{Name: "eth1", MAC: RandomMAC(), Parent: parent.Attrs().Name, IPv4: netip.MustParsePrefix("192.0.2.10/24")}
	if err := Attach(pid, nic); err != nil {
		t.Fatal(err)
	}
	h := handleIn(t, pid)
	inside, err := h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	if inside.Type() != "macvlan" || inside.Attrs().HardwareAddr.String() != nic.MAC.String() || inside.Attrs().ParentIndex != parent.Attrs().Index {
		t.Errorf("eth1: %s, MAC %s, parent %d", inside.Type(), inside.Attrs().HardwareAddr, inside.Attrs().ParentIndex)
	}
	if out, err := inNS(pid, "ip", "-o", "-4", "addr", "show", "dev", "eth1"); err != nil || !strings.Contains(out, "192.0.2.10/24") {
		t.Errorf("eth1 address: %s %v", out, err)
	}
	if err := Detach(pid, nic); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("eth1"); err == nil {
		t.Error("eth1 left after Detach")
	}

	nic.Parent = "nosuchparent"
	if err := Attach(pid, nic); !errors.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), "nosuchparent") {
		t.Errorf("missing parent: %v, want NotFound naming it", err)
	}
}

func TestDHCP(t *testing.T) {
	n := testNet(t, "silotn2", 32)
	mac := RandomMAC()
	n.Hosts = []Host{{Name: "dhcpc", MAC: mac, IPv4: addr4(n, 50)}}
	mustEnsure(t, n)
	pid := sandbox(t, true)
	// No address of silo's: the one it gets is dnsmasq's fixed lease.
	if err := Attach(pid, NIC{Name: "eth0", HostName: "vtn2", MAC: mac, Bridge: n.Bridge}); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $ip\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := inNS(pid, "/bin/busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script)
	if want := "bound " + addr4(n, 50).String(); err != nil || !strings.Contains(out, want) {
		t.Fatalf("udhcpc: %v\n%s\nwant %q", err, out, want)
	}
	leases, err := Leases(n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].MAC.String() != mac.String() || leases[0].Addr != addr4(n, 50) || leases[0].Hostname != "dhcpc" {
		t.Errorf("leases %+v", leases)
	}
}

func TestFilters(t *testing.T) {
	n, pid, nic := instance(t, "silotn3", 33)
	// Another's addresses, taken.
	spoof4, spoof6 := addr4(n, 99), addr6(n, 99)
	for _, a := range []netip.Prefix{netip.PrefixFrom(spoof4, 24), netip.PrefixFrom(spoof6, 64)} {
		if out, err := inNS(pid, "ip", "addr", "add", a.String(), "dev", "eth0", "nodad"); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
	}
	gw4, gw6 := n.IPv4.Addr(), n.IPv6.Addr()
	// Without filters, the stolen addresses work: so the test can fail.
	if !ping(pid, spoof4, gw4) || !ping(pid, spoof6, gw6) {
		t.Fatal("without filters, the spoofed sources get no answer")
	}

	n.Filters = []Filter{{HostName: nic.HostName, MAC: nic.MAC, IPv4: nic.IPv4.Addr(), IPv6: nic.IPv6.Addr(), MACFiltering: true, IPv4Filtering: true, IPv6Filtering: true}}
	mustEnsure(t, n)
	if !ping(pid, nic.IPv4.Addr(), gw4) || !ping(pid, nic.IPv6.Addr(), gw6) {
		t.Error("with filters, the nic's own addresses get no answer")
	}
	if ping(pid, spoof4, gw4) {
		t.Error("a spoofed IPv4 source got through")
	}
	if ping(pid, spoof6, gw6) {
		t.Error("a spoofed IPv6 source got through")
	}

	// Another MAC: the host must ask again for it, and hears only a spoof.
	if out, err := inNS(pid, "ip", "link", "set", "eth0", "address", RandomMAC().String()); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if err := netlink.NeighDel(&netlink.Neigh{LinkIndex: link(t, n.Bridge).Attrs().Index, IP: nic.IPv4.Addr().AsSlice()}); err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatal(err)
	}
	if ping(pid, nic.IPv4.Addr(), gw4) {
		t.Error("a spoofed MAC got through")
	}
	n.Filters = nil
	mustEnsure(t, n)
	if !ping(pid, nic.IPv4.Addr(), gw4) {
		t.Error("without filters again, the new MAC gets no answer")
	}
}

func TestForward(t *testing.T) {
	n, pid, nic := instance(t, "silotn4", 34)
	target := nic.IPv4.Addr()
	n.Forwards = []Forward{
		{Proto: "tcp", Listen: netip.MustParseAddrPort("0.0.0.0:8080"), Target: netip.AddrPortFrom(target, 80)},
		{Proto: "tcp", Listen: netip.AddrPortFrom(n.IPv4.Addr(), 8081), Target: netip.AddrPortFrom(target, 81)},
	}
	mustEnsure(t, n)
	serve(t, pid, ":80", "eighty")
	serve(t, pid, ":81", "eighty-one")
	outside := outsideWorld(t)

	for _, c := range []struct {
		what, addr, want string
		dial             func(string) (net.Conn, error)
	}{
		{"from the host to the gateway", fmt.Sprintf("%s:8080", n.IPv4.Addr()), "eighty from " + n.IPv4.Addr().String(), nil},
		{"from the host to 127.0.0.1", "127.0.0.1:8080", "eighty from " + n.IPv4.Addr().String(), nil},
		{"from the host to its outside address", "192.0.2.1:8080", "eighty from 192.0.2.1", nil},
		{"from the host to a listen address", fmt.Sprintf("%s:8081", n.IPv4.Addr()), "eighty-one from " + n.IPv4.Addr().String(), nil},
		{"from the instance to itself, through the host", fmt.Sprintf("%s:8080", n.IPv4.Addr()), "eighty from " + n.IPv4.Addr().String(), dialFrom(t, pid)},
		{"from outside", "192.0.2.1:8080", "eighty from 192.0.2.2", dialFrom(t, outside)},
	} {
		if got, err := fetch(c.addr, c.dial); err != nil || got != c.want {
			t.Errorf("%s (%s): %q, %v; want %q", c.what, c.addr, got, err, c.want)
		}
	}
	// A listen address that is not the one dialled does not forward.
	if got, err := fetch("192.0.2.1:8081", nil); err == nil {
		t.Errorf("192.0.2.1:8081 forwarded: %q", got)
	}
}

func TestNAT(t *testing.T) {
	n, pid, nic := instance(t, "silotn5", 35)
	outside := outsideWorld(t)
	serve(t, outside, "192.0.2.2:9000", "outside")
	if got, err := fetch("192.0.2.2:9000", dialFrom(t, pid)); err != nil || got != "outside from 192.0.2.1" {
		t.Errorf("from the instance to the outside: %q, %v; want it masqueraded to 192.0.2.1", got, err)
	}
	// Instances on the bridge see each other as they are.
	other := sandbox(t, true)
	if err := Attach(other, bridged(n, "vtn5b", 11)); err != nil {
		t.Fatal(err)
	}
	serve(t, other, ":7000", "other")
	if got, err := fetch(fmt.Sprintf("%s:7000", addr4(n, 11)), dialFrom(t, pid)); err != nil || got != "other from "+nic.IPv4.Addr().String() {
		t.Errorf("from one instance to another: %q, %v; want it unchanged", got, err)
	}
}

// outsideWorld is a namespace joined to the test's by a veth: 192.0.2.1
// on this side, 192.0.2.2 on its own, and a default route back.
func outsideWorld(t *testing.T) int {
	t.Helper()
	pid := sandbox(t, false)
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "vout"
	attrs.Flags = net.FlagUp
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(&netlink.Veth{LinkAttrs: attrs}) })
	if err := netlink.AddrAdd(link(t, "vout"), &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.1/24"))}); err != nil {
		t.Fatal(err)
	}
	if err := configure(handleIn(t, pid), NIC{Name: "eth0", IPv4: netip.MustParsePrefix("192.0.2.2/24"), Gateway4: netip.MustParseAddr("192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestEUI64(t *testing.T) {
	mac, _ := net.ParseMAC("00:16:3e:12:34:56")
	if got, want := EUI64(netip.MustParsePrefix("fd42:1:2:3::1/64"), mac), netip.MustParseAddr("fd42:1:2:3:216:3eff:fe12:3456"); got != want {
		t.Errorf("EUI64: %s, want %s", got, want)
	}
	if got := EUI64(netip.MustParsePrefix("10.0.0.0/24"), mac); got.IsValid() {
		t.Errorf("EUI64 in IPv4: %s", got)
	}
	if got := EUI64(netip.MustParsePrefix("fd42::/96"), mac); got.IsValid() {
		t.Errorf("EUI64 in a /96: %s", got)
	}
}

func TestRandomMAC(t *testing.T) {
	a, b := RandomMAC(), RandomMAC()
	if len(a) != 6 || a[0] != 0x00 || a[1] != 0x16 || a[2] != 0x3e || a.String() == b.String() {
		t.Errorf("RandomMAC: %s, %s", a, b)
	}
}
