package network

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/revert"
)

// NIC is a network interface of an instance: a veth pair whose host side
// joins a bridge, or a macvlan on a host interface.
type NIC struct {
	Name     string           // its name inside, e.g. eth0
	HostName string           // bridged: the host side of the veth pair
	MAC      net.HardwareAddr // nil: the kernel picks one
	Bridge   string           // bridged: the bridge to join
	Parent   string           // macvlan: the host interface it sits on (mode bridge)
	MTU      int              // 0: the bridge's or the parent's
	IPv4     netip.Prefix     // address and length to set; invalid: none
	Gateway4 netip.Addr       // the default route's gateway; invalid: none
	IPv6     netip.Prefix     // address in a /64, set without duplicate detection; invalid: none
	Gateway6 netip.Addr
}

func (nic *NIC) validate() error {
	if err := validIfname(nic.Name); err != nil {
		return err
	}
	if (nic.Bridge == "") == (nic.Parent == "") {
		return errkind.Wrap(errkind.Invalid, "nic %s: give either a bridge or a parent", nic.Name)
	}
	for _, name := range []string{nic.Bridge, nic.Parent} {
		if name != "" {
			if err := validIfname(name); err != nil {
				return err
			}
		}
	}
	if nic.Bridge != "" {
		if err := validIfname(nic.HostName); err != nil {
			return err
		}
	}
	if nic.MAC != nil && (len(nic.MAC) != 6 || nic.MAC[0]&1 != 0) {
		return errkind.Wrap(errkind.Invalid, "nic %s: MAC %s is not a unicast Ethernet address", nic.Name, nic.MAC)
	}
	if nic.MTU < 0 {
		return errkind.Wrap(errkind.Invalid, "nic %s: MTU %d", nic.Name, nic.MTU)
	}
	if nic.IPv4.IsValid() && !nic.IPv4.Addr().Is4() || nic.Gateway4.IsValid() && (!nic.Gateway4.Is4() || !nic.IPv4.IsValid()) {
		return errkind.Wrap(errkind.Invalid, "nic %s: IPv4 address %s and gateway %s", nic.Name, nic.IPv4, nic.Gateway4)
	}
	if nic.IPv6.IsValid() && (!nic.IPv6.Addr().Is6() || nic.IPv6.Addr().Is4In6()) || nic.Gateway6.IsValid() && (!nic.Gateway6.Is6() || !nic.IPv6.IsValid()) {
		return errkind.Wrap(errkind.Invalid, "nic %s: IPv6 address %s and gateway %s", nic.Name, nic.IPv6, nic.Gateway6)
	}
	return nil
}

// Attach gives the network namespace of process pid the nic, configured:
// the veth pair (its host side joined to the bridge and up) or the
// macvlan is made with its inside end already in the namespace, under its
// name and MAC, with its addresses, up, with its default routes; and the
// namespace's loopback is brought up. It is meant for the moment between
// the runtime's create and start, so that the network works from the
// first instruction of init. On failure nothing is left.
func Attach(pid int, nic NIC) error {
	if err := nic.validate(); err != nil {
		return err
	}
	ns, h, release, err := openNetns(pid)
	if err != nil {
		return fmt.Errorf("nic %s: %w", nic.Name, err)
	}
	defer release()

	r := revert.New()
	defer r.Fail()
	if nic.Bridge != "" {
		err = addVeth(r, ns, nic)
	} else {
		err = addMacvlan(r, h, ns, nic)
	}
	if err != nil {
		return err
	}
	if err := configure(h, nic); err != nil {
		return fmt.Errorf("nic %s of process %d: %w", nic.Name, pid, err)
	}
	r.Success()
	return nil
}

func addVeth(r *revert.List, ns int, nic NIC) error {
	br, err := netlink.LinkByName(nic.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return errkind.Wrap(errkind.NotFound, "bridge %s does not exist", nic.Bridge)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", nic.Bridge, err)
	}
	if br.Type() != "bridge" {
		return errkind.Wrap(errkind.Invalid, "%s is not a bridge", nic.Bridge)
	}
	mtu := nic.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = nic.HostName
	attrs.MTU = mtu
	attrs.Flags = net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: nic.Name, PeerHardwareAddr: nic.MAC, PeerNamespace: netlink.NsFd(ns), PeerMTU: uint32(mtu)}
	if err := netlink.LinkAdd(veth); err != nil {
		return linkErr(err, "create veth %s for nic %s", nic.HostName, nic.Name)
	}
	r.Add(func() { _ = netlink.LinkDel(veth) })
	if err := netlink.LinkSetMasterByIndex(veth, br.Attrs().Index); err != nil {
		return fmt.Errorf("join %s to bridge %s: %w", nic.HostName, nic.Bridge, err)
	}
	// An instance that reaches its own port forward sends a packet that
	// comes back to it. Where br_netfilter runs the inet hooks on bridged
	// frames (bridge-nf-call-iptables, Debian's default once loaded), the
	// bridge itself sends it back out of the port it came in by, which it
	// does only in hairpin mode. The instance then also hears its own
	// broadcasts, which Linux's duplicate address detection tells apart.
	if err := netlink.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("hairpin mode on %s: %w", nic.HostName, err)
	}
	return nil
}

func addMacvlan(r *revert.List, h *netlink.Handle, ns int, nic NIC) error {
	parent, err := netlink.LinkByName(nic.Parent)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return errkind.Wrap(errkind.NotFound, "parent interface %s does not exist", nic.Parent)
	}
	if err != nil {
		return fmt.Errorf("parent interface %s: %w", nic.Parent, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = nic.Name
	attrs.ParentIndex = parent.Attrs().Index
	attrs.MTU = nic.MTU
	attrs.HardwareAddr = nic.MAC
	attrs.Namespace = netlink.NsFd(ns)
	if err := netlink.LinkAdd(&netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		return linkErr(err, "create macvlan %s on %s", nic.Name, nic.Parent)
	}
	r.Add(func() {
		if l, err := h.LinkByName(nic.Name); err == nil {
			_ = h.LinkDel(l)
		}
	})
	return nil
}

// configure sets up the nic's inside end through h, a netlink handle in
// its namespace.
func configure(h *netlink.Handle, nic NIC) error {
	// The loopback is always interface 1 of a network namespace.
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}}); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	link, err := h.LinkByName(nic.Name)
	if err != nil {
		return err
	}
	if nic.IPv4.IsValid() {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(nic.IPv4)}); err != nil {
			return linkErr(err, "add address %s", nic.IPv4)
		}
	}
	if nic.IPv6.IsValid() {
		// Duplicate detection would hold the address back for a second or
		// more; silo gave it, and knows that it is free.
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(nic.IPv6), Flags: unix.IFA_F_NODAD}); err != nil {
			return linkErr(err, "add address %s", nic.IPv6)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	for _, gw := range []netip.Addr{nic.Gateway4, nic.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		// The namespace has one default route per family: a nic plugged
		// after the one that has it, on another network, leaves it there
		// and reaches its own subnet only.
		has, err := hasDefaultRoute(h, gw)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, err)
		}
	}
	return nil
}

// hasDefaultRoute says whether the main table of h's namespace has a
// default route of gw's family.
func hasDefaultRoute(h *netlink.Handle, gw netip.Addr) (bool, error) {
	family := netlink.FAMILY_V4
	if gw.Is6() {
		family = netlink.FAMILY_V6
	}
	routes, err := dump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || prefixOf(r.Dst).Bits() == 0 {
			return true, nil
		}
	}
	return false, nil
}

// Detach removes the nic from a running instance: the veth pair, through
// its host side, or the macvlan inside the namespace of process pid. A
// nic that is already gone is no error.
func Detach(pid int, nic NIC) error {
	if err := nic.validate(); err != nil {
		return err
	}
	if nic.Bridge != "" {
		return DeleteVeth(nic.HostName)
	}
	_, h, release, err := openNetns(pid)
	if errors.Is(err, errkind.NotFound) {
		return nil // the namespace went with its process, and the macvlan with it
	}
	if err != nil {
		return fmt.Errorf("nic %s: %w", nic.Name, err)
	}
	defer release()
	link, err := h.LinkByName(nic.Name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nic %s: %w", nic.Name, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete nic %s: %w", nic.Name, err)
	}
	return nil
}

// DeleteVeth removes a veth pair through its host side, hostName: a nic
// of a running instance, or what a start cut short left behind. One that
// is already gone is no error.
func DeleteVeth(hostName string) error {
	link, err := netlink.LinkByName(hostName)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nic %s: %w", hostName, err)
	}
	if link.Type() != "veth" {
		return errkind.Wrap(errkind.Invalid, "%s is not the veth of a nic", hostName)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete nic %s: %w", hostName, err)
	}
	return nil
}

// Counters returns the bytes that the nic name has received and sent, as
// the instance whose process pid is sees them.
func Counters(pid int, name string) (rx, tx uint64, err error) {
	all, err := AllStats(pid)
	if err != nil {
		return 0, 0, fmt.Errorf("counters of nic %s: %w", name, err)
	}
	s, ok := all[name]
	if !ok {
		return 0, 0, errkind.Wrap(errkind.NotFound, "process %d has no nic %s", pid, name)
	}
	return s.RxBytes, s.TxBytes, nil
}

// Stats are the traffic counters of a nic, as the instance sees them.
type Stats struct {
	RxBytes, RxPackets, RxErrs, RxDrop uint64
	TxBytes, TxPackets, TxErrs, TxDrop uint64
}

// AllStats returns the counters of every nic of the instance whose
// process pid is, by name: from one read of the kernel's table, which
// the instance's own view gives whatever kind its nics are.
func AllStats(pid int) (map[string]Stats, error) {
	// /proc/PID/net is the view of that process's network namespace.
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, errkind.FromErrno(err)
	}
	defer f.Close()
	out := map[string]Stats{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "  eth0: RX bytes packets errs drop fifo frame compressed multicast, TX bytes packets errs drop ..."
		iface, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) < 12 {
			continue // the two header lines
		}
		var n [12]uint64
		for i := range n {
			if n[i], err = strconv.ParseUint(fields[i], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/%d/net/dev: %w", pid, err)
			}
		}
		out[strings.TrimSpace(iface)] = Stats{RxBytes: n[0], RxPackets: n[1], RxErrs: n[2], RxDrop: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrs: n[10], TxDrop: n[11]}
	}
	return out, sc.Err()
}

// EUI64 is the address that SLAAC gives the MAC in prefix, a /64, when
// the instance forms it from its MAC (the kernel's default): what a router
// advertisement will give it, known beforehand. Invalid for anything but
// an IPv6 prefix of at most 64 bits and a 6-byte MAC.
func EUI64(prefix netip.Prefix, mac net.HardwareAddr) netip.Addr {
	if !prefix.Addr().Is6() || prefix.Addr().Is4In6() || prefix.Bits() > 64 || len(mac) != 6 {
		return netip.Addr{}
	}
	a := prefix.Masked().Addr().As16()
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// RandomMAC returns a MAC under 00:16:3e, the prefix that LXD gives its
// instances, so that tools that know LXD's MACs know silo's.
func RandomMAC() net.HardwareAddr {
	mac := net.HardwareAddr{0x00, 0x16, 0x3e, 0, 0, 0}
	rand.Read(mac[3:])
	return mac
}

// openNetns opens the network namespace of process pid, and a netlink
// handle in it; release closes both.
func openNetns(pid int) (ns int, h *netlink.Handle, release func(), err error) {
	ns, err = unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil, nil, errkind.Wrap(errkind.NotFound, "process %d does not exist", pid)
	}
	if err != nil {
		return -1, nil, nil, fmt.Errorf("network namespace of process %d: %w", pid, err)
	}
	h, err = netlink.NewHandleAt(netns.NsHandle(ns), unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(ns)
		return -1, nil, nil, fmt.Errorf("netlink in the namespace of process %d: %w", pid, err)
	}
	return ns, h, func() { h.Close(); unix.Close(ns) }, nil
}

// linkErr names a netlink failure, with the kind its errno has: EEXIST, a
// name that is taken, is AlreadyExists.
func linkErr(err error, format string, args ...any) error {
	return errkind.FromErrno(fmt.Errorf(format+": %w", append(args, err)...))
}
