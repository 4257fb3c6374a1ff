// Package network sets up silo's managed networks on the host: a Linux
// bridge with its gateway addresses, silo's nftables tables for it (NAT,
// forwarding, per-nic filtering, port forwards) and a dnsmasq for DHCP,
// router advertisements and DNS; and it joins instances to them with veth
// pairs or macvlans.
//
// It keeps no records. The engine computes the whole desired state of a
// network from its store and hands it to Ensure, which brings the host to
// it and does nothing when the host is already there: so the same call
// creates a network, updates it, and brings it back after a reboot or
// after something died behind silo's back.
package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/revert"
)

// Net is the whole desired state of one managed network.
type Net struct {
	Name    string       // silo's name for it, for messages and comments
	Bridge  string       // Linux bridge name, at most 15 bytes
	IPv4    netip.Prefix // the gateway's address and prefix, e.g. 10.57.3.1/24; invalid: no IPv4
	IPv4NAT bool
	IPv6    netip.Prefix // the gateway's address in a /64, e.g. fd42:1:2:3::1/64; invalid: no IPv6
	IPv6NAT bool
	Domain  string // DNS domain: instances resolve as NAME.DOMAIN and NAME
	Dir     string // absolute directory for this network's dnsmasq files; made if missing

	Hosts    []Host    // fixed DHCP leases and DNS names of the nics on this network
	Filters  []Filter  // per-nic filtering against spoofing
	Forwards []Forward // port forwards in the kernel (DNAT)
}

// Host is a nic on the network: dnsmasq gives it IPv4 by its MAC, and
// answers for its name with both addresses.
type Host struct {
	Name       string
	MAC        net.HardwareAddr
	IPv4, IPv6 netip.Addr // invalid: none
}

// Filter is what the frames that a nic sends into the bridge may carry,
// as LXD's security.mac_filtering, ipv4_filtering and ipv6_filtering
// have it: its own MAC and addresses only. A filter that is on for a
// family the nic has no address in drops that family (but DHCP's and
// router solicitation's unspecified and link-local sources).
type Filter struct {
	HostName      string // the host side of the nic's veth
	MAC           net.HardwareAddr
	IPv4, IPv6    netip.Addr
	MACFiltering  bool
	IPv4Filtering bool
	IPv6Filtering bool
}

// Forward sends connections to a port of the host on to an instance, in
// the kernel: from outside, from instances, and from the host itself,
// through 127.0.0.1 too (IPv6 has no such path from ::1).
type Forward struct {
	Proto  string         // "tcp" or "udp"
	Listen netip.AddrPort // 0.0.0.0 (or ::) listens on every local address
	Target netip.AddrPort // an address on this network
}

// Ensure brings the host to n: the bridge up with its addresses and
// sysctls, silo's nftables tables for it rebuilt in one atomic batch when
// they differ, and its dnsmasq running with the current hosts (restarted
// when its configuration changed, sent SIGHUP when only the hosts did).
// A second call with the same n changes nothing. Calls for one network
// are serialized by a lock file in n.Dir.
func Ensure(ctx context.Context, n Net) error {
	if err := n.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	unlock, err := lockDir(n.Dir)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	defer unlock()

	r := revert.New()
	defer r.Fail()
	created, err := ensureBridge(n)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if created {
		slog.Info("network: bridge created", "network", n.Name, "bridge", n.Bridge)
		r.Add(func() { _ = deleteBridge(n.Bridge) })
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rebuilt, fresh, err := ensureRules(n)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if rebuilt {
		slog.Debug("network: nftables rebuilt", "network", n.Name, "bridge", n.Bridge)
	}
	if fresh {
		r.Add(func() { _ = deleteRules(n.Bridge) })
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ensureDnsmasq(n); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	r.Success()
	return nil
}

// Remove deletes every trace of a network: its dnsmasq, its nftables
// tables, its bridge, and dir with everything in it. What is already gone
// is no error, so that it can finish what an interrupted Remove began.
func Remove(ctx context.Context, bridge, dir string) error {
	if err := validIfname(bridge); err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return errkind.Wrap(errkind.Invalid, "network directory %q is not absolute", dir)
	}
	if _, err := os.Stat(dir); err == nil {
		unlock, err := lockDir(dir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	errs := []error{stopDnsmasq(dir)}
	if err := ctx.Err(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, deleteRules(bridge), deleteBridge(bridge))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove network bridge %s: %w", bridge, err)
	}
	return nil
}

// lockDir takes an exclusive lock on dir's lock file, for as long as the
// returned function is not called: silo is daemonless, so two commands
// may start instances on one network at once.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (n *Net) validate() error {
	if n.Name == "" || strings.ContainsFunc(n.Name, isControl) {
		return errkind.Wrap(errkind.Invalid, "network name %q is empty or has control characters", n.Name)
	}
	if err := validIfname(n.Bridge); err != nil {
		return err
	}
	if n.IPv4.IsValid() {
		if err := validGateway4(n.IPv4); err != nil {
			return err
		}
	}
	if n.IPv6.IsValid() {
		if err := validGateway6(n.IPv6); err != nil {
			return err
		}
	}
	if n.IPv4NAT && !n.IPv4.IsValid() || n.IPv6NAT && !n.IPv6.IsValid() {
		return errkind.Wrap(errkind.Invalid, "network %s: NAT asked for a family it has no subnet in", n.Name)
	}
	if n.Domain != "" {
		for _, label := range strings.Split(n.Domain, ".") {
			if !validLabel(label) {
				return errkind.Wrap(errkind.Invalid, "network %s: DNS domain %q is not a domain name", n.Name, n.Domain)
			}
		}
	}
	if !filepath.IsAbs(n.Dir) || filepath.Clean(n.Dir) != n.Dir || strings.ContainsFunc(n.Dir, isControl) {
		return errkind.Wrap(errkind.Invalid, "network %s: directory %q is not a clean absolute path", n.Name, n.Dir)
	}
	for _, h := range n.Hosts {
		if err := n.validHost(h); err != nil {
			return err
		}
	}
	for _, f := range n.Filters {
		if err := validFilter(f); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	for _, f := range n.Forwards {
		if err := n.validForward(f); err != nil {
			return err
		}
	}
	return nil
}

func validGateway4(p netip.Prefix) error {
	if !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 30 {
		return errkind.Wrap(errkind.Invalid, "IPv4 subnet %s: want an IPv4 address with a prefix of 8 to 30 bits", p)
	}
	if p.Addr() == p.Masked().Addr() || p.Addr() == LastAddr(p) {
		return errkind.Wrap(errkind.Invalid, "IPv4 subnet %s: the gateway cannot be the network or broadcast address", p)
	}
	return nil
}

func validGateway6(p netip.Prefix) error {
	if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
		return errkind.Wrap(errkind.Invalid, "IPv6 subnet %s: want an IPv6 address in a /64 (router advertisements need it)", p)
	}
	if p.Addr() == p.Masked().Addr() {
		return errkind.Wrap(errkind.Invalid, "IPv6 subnet %s: the gateway cannot be the subnet-router anycast address", p)
	}
	return nil
}

func (n *Net) validHost(h Host) error {
	if !validLabel(h.Name) {
		return errkind.Wrap(errkind.Invalid, "network %s: host name %q is not a DNS label", n.Name, h.Name)
	}
	if len(h.MAC) != 6 {
		return errkind.Wrap(errkind.Invalid, "network %s: host %s has no Ethernet MAC", n.Name, h.Name)
	}
	for _, a := range []struct {
		addr   netip.Addr
		subnet netip.Prefix
	}{{h.IPv4, n.IPv4}, {h.IPv6, n.IPv6}} {
		if a.addr.IsValid() && (!a.subnet.IsValid() || !a.subnet.Contains(a.addr) || a.addr == a.subnet.Addr()) {
			return errkind.Wrap(errkind.Invalid, "network %s: address %s of host %s is not a free address of its subnets", n.Name, a.addr, h.Name)
		}
	}
	return nil
}

func validFilter(f Filter) error {
	if err := validIfname(f.HostName); err != nil {
		return err
	}
	if f.MACFiltering && len(f.MAC) != 6 {
		return errkind.Wrap(errkind.Invalid, "MAC filtering on %s needs its Ethernet MAC", f.HostName)
	}
	if f.IPv4.IsValid() && !f.IPv4.Is4() || f.IPv6.IsValid() && (!f.IPv6.Is6() || f.IPv6.Is4In6()) {
		return errkind.Wrap(errkind.Invalid, "filter of %s: addresses %s and %s are not IPv4 and IPv6", f.HostName, f.IPv4, f.IPv6)
	}
	return nil
}

func (n *Net) validForward(f Forward) error {
	if f.Proto != "tcp" && f.Proto != "udp" {
		return errkind.Wrap(errkind.Invalid, "network %s: forward protocol %q is neither tcp nor udp", n.Name, f.Proto)
	}
	if !f.Listen.IsValid() || f.Listen.Port() == 0 || !f.Target.IsValid() || f.Target.Port() == 0 {
		return errkind.Wrap(errkind.Invalid, "network %s: forward %s -> %s needs an address and a port on both sides", n.Name, f.Listen, f.Target)
	}
	subnet := n.IPv4
	if f.Target.Addr().Is6() {
		subnet = n.IPv6
	}
	if f.Listen.Addr().Is4() != f.Target.Addr().Is4() || !subnet.IsValid() || !subnet.Contains(f.Target.Addr()) {
		return errkind.Wrap(errkind.Invalid, "network %s: forward %s -> %s: the target must be an address of this network, of the family listened on", n.Name, f.Listen, f.Target)
	}
	return nil
}

// validIfname is the kernel's own rule for interface names (dev_valid_name).
func validIfname(name string) error {
	if name == "" || len(name) > unix.IFNAMSIZ-1 || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || r <= ' ' || r == 0x7f }) {
		return errkind.Wrap(errkind.Invalid, "interface name %q is not valid: at most 15 bytes, no '/', ':' or spaces", name)
	}
	return nil
}

// validLabel is a DNS label as hostnames have them (RFC 1123).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// LastAddr is the highest address of p: IPv4's broadcast address.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
