package network

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/revert"
)

// ensureBridge brings the bridge to n: there, up, with exactly the
// gateway addresses of n (link-local ones aside), and its sysctls set.
// created says that this call made it.
func ensureBridge(n Net) (created bool, err error) {
	r := revert.New()
	defer r.Fail()
	link, err := netlink.LinkByName(n.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.Bridge
		attrs.HardwareAddr = bridgeMAC(n.Bridge)
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		r.Add(func() { _ = deleteBridge(n.Bridge) })
		link, created = br, true
	} else if err != nil {
		return false, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	} else if link.Type() != "bridge" {
		return false, errkind.Wrap(errkind.AlreadyExists, "interface %s exists and is not a bridge", n.Bridge)
	}
	if err := bridgeSysctls(n); err != nil {
		return false, err
	}
	if err := ensureAddrs(link, n); err != nil {
		return false, err
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return false, fmt.Errorf("set bridge %s up: %w", n.Bridge, err)
		}
	}
	r.Success()
	return created, nil
}

// bridgeMAC is a fixed, locally administered address for the bridge.
// Without one, a bridge takes the lowest MAC among its ports, so the
// gateway's MAC would change as instances come and go, and their
// neighbour caches would go stale.
func bridgeMAC(bridge string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("silo bridge " + bridge))
	return net.HardwareAddr{0x02, 0x16, 0x3e, sum[0], sum[1], sum[2]}
}

func ensureAddrs(link netlink.Link, n Net) error {
	want := map[netip.Prefix]bool{}
	for _, p := range []netip.Prefix{n.IPv4, n.IPv6} {
		if p.IsValid() {
			want[p] = true
		}
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("addresses of bridge %s: %w", n.Bridge, err)
	}
	for _, a := range addrs {
		if a.Scope == unix.RT_SCOPE_LINK {
			continue
		}
		p := prefixOf(a.IPNet)
		if want[p] {
			delete(want, p)
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove old address %s from bridge %s: %w", p, n.Bridge, err)
		}
	}
	for p := range want {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			// The gateway's address is silo's to give: waiting for duplicate
			// detection would only keep dnsmasq from binding to it.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s to bridge %s: %w", p, n.Bridge, err)
		}
	}
	return nil
}

// bridgeSysctls turns on forwarding for the families the network has, and
// route_localnet on the bridge when forwards need it. They are per network
// namespace, and read before written, so that the common case costs reads.
func bridgeSysctls(n Net) error {
	if n.IPv4.IsValid() {
		if err := sysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
	}
	// The host reaching a forward through 127.0.0.1 sends a packet from a
	// loopback address out of the bridge, which the kernel refuses without
	// route_localnet; the nftables table drops loopback addresses coming in
	// from the bridge in exchange.
	localnet := "0"
	if hasForward4(n) {
		localnet = "1"
	}
	if err := sysctl(filepath.Join("net/ipv4/conf", n.Bridge, "route_localnet"), localnet); err != nil {
		return err
	}
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		if n.IPv6.IsValid() {
			return errkind.Wrap(errkind.Unavailable, "network %s wants IPv6, which this kernel has turned off", n.Name)
		}
		return nil
	}
	// The bridge must not take router advertisements from instances.
	if err := sysctl(filepath.Join("net/ipv6/conf", n.Bridge, "accept_ra"), "0"); err != nil {
		return err
	}
	// Nor wait on duplicate detection for its link-local address, which
	// comes with the first nic: dnsmasq would answer that nic's router
	// solicitation from the gateway's global address meanwhile, which
	// the instance ignores, and it would have no default route until
	// the next unsolicited advertisement, seconds later.
	if err := sysctl(filepath.Join("net/ipv6/conf", n.Bridge, "accept_dad"), "0"); err != nil {
		return err
	}
	if n.IPv6.IsValid() {
		return enableIPv6Forwarding(n.Bridge)
	}
	return nil
}

// enableIPv6Forwarding turns IPv6 forwarding on, as LXD does: an interface
// with accept_ra=1 stops taking router advertisements once forwarding is
// on, so those get accept_ra=2 first and the host keeps its own addresses.
func enableIPv6Forwarding(bridge string) error {
	if on, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil && strings.TrimSpace(string(on)) == "1" {
		return nil
	}
	entries, err := os.ReadDir("/proc/sys/net/ipv6/conf")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == bridge {
			continue
		}
		key := filepath.Join("net/ipv6/conf", e.Name(), "accept_ra")
		if ra, err := os.ReadFile("/proc/sys/" + key); err == nil && strings.TrimSpace(string(ra)) == "1" {
			if err := sysctl(key, "2"); err != nil {
				return err
			}
		}
	}
	return sysctl("net/ipv6/conf/all/forwarding", "1")
}

// sysctl sets /proc/sys/key to want, writing only when it differs.
func sysctl(key, want string) error {
	path := "/proc/sys/" + key
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	if strings.TrimSpace(string(b)) == want {
		return nil
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	return nil
}

// deleteBridge deletes the bridge if it is there and is a bridge.
func deleteBridge(bridge string) error {
	link, err := netlink.LinkByName(bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	if link.Type() != "bridge" {
		return nil
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", bridge, err)
	}
	return nil
}

// dump retries a netlink dump that a concurrent change interrupted, since
// its result may then be inconsistent.
func dump[T any](f func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < 10 {
			continue
		}
		return v, err
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf is the address and prefix length of n, as netip has them.
func prefixOf(n *net.IPNet) netip.Prefix {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	a = a.Unmap()
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}
