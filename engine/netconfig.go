package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network"
)

// Network config keys.
const (
	netIPv4    = "ipv4.address" // auto, none, or the bridge's address and prefix (10.1.2.1/24)
	netIPv4NAT = "ipv4.nat"
	netIPv6    = "ipv6.address" // auto, none, or the bridge's address and prefix (fd42::1/64)
	netIPv6NAT = "ipv6.nat"
	netDomain  = "dns.domain"

	defaultDomain = "silo"
)

var networkKeys = []string{netIPv4, netIPv4NAT, netIPv6, netIPv6NAT, netDomain}

// netConfigPrefix reads an address key of n: invalid when it has none.
func netConfigPrefix(n *store.Network, key string) (netip.Prefix, error) {
	v := n.Config[key]
	if v == "" || v == "none" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return p, fmt.Errorf("network %s: %s=%q: %w", n.Name, key, v, err)
	}
	return p, nil
}

// checkNetworkConfig checks one key of a network's config.
func checkNetworkConfig(k, v string) error {
	switch k {
	case netIPv4NAT, netIPv6NAT:
		if v != "true" && v != "false" {
			return errkind.Wrap(errkind.Invalid, "network config %s: %q is neither true nor false", k, v)
		}
	case netIPv4, netIPv6:
		if v == "auto" || v == "none" {
			return nil
		}
		p, err := netip.ParsePrefix(v)
		switch {
		case err != nil || p.Addr().Is4() != (k == netIPv4):
			return errkind.Wrap(errkind.Invalid, "network config %s: %q is not auto, none, or an address of that family with its prefix length (10.1.2.1/24)", k, v)
		case k == netIPv4 && (p.Bits() < 8 || p.Bits() > 30):
			return errkind.Wrap(errkind.Invalid, "network config %s: a /%d has no room for instances: give /8 to /30", k, p.Bits())
		case k == netIPv6 && p.Bits() != 64:
			return errkind.Wrap(errkind.Invalid, "network config %s: give a /64, which router advertisements need", k)
		case p.Addr() == p.Masked().Addr():
			return errkind.Wrap(errkind.Invalid, "network config %s: %s is the subnet, not the bridge's address in it (such as %s)", k, v, netip.PrefixFrom(p.Addr().Next(), p.Bits()))
		}
	case netDomain:
		if !isDomain(v) {
			return errkind.Wrap(errkind.Invalid, "network config %s: %q is not a DNS domain", k, v)
		}
	default:
		return errkind.Wrap(errkind.Invalid, "unknown network config key %q (%s)", k, strings.Join(networkKeys, ", "))
	}
	return nil
}

// isDomain reports whether v is a DNS domain: labels of letters, digits
// and inner hyphens.
func isDomain(v string) bool {
	if len(v) > 253 {
		return false
	}
	for _, label := range strings.Split(v, ".") {
		if !(nameRule{max: 63, extra: "-", alnumLast: true}).allows(label) {
			return false
		}
	}
	return true
}

// newNetwork is the record of a new network as LXD makes one by default:
// automatic subnets of both families, NAT, and silo's DNS domain.
func newNetwork(name string) *store.Network {
	return &store.Network{Name: name, Bridge: name, Created: time.Now().UTC(),
		Config: map[string]string{netIPv4: "auto", netIPv4NAT: "true", netIPv6: "auto", netIPv6NAT: "true", netDomain: defaultDomain}}
}

// networkFor returns the record of the network a nic names, making the
// default network's record on first use.
func networkFor(tx *store.Tx, name string) (*store.Network, error) {
	n, err := tx.Network(name)
	if !errors.Is(err, errkind.NotFound) || name != store.DefaultNetwork {
		return n, err
	}
	n = newNetwork(name)
	if err := resolveSubnets(tx, n); err != nil {
		return nil, err
	}
	if err := tx.PutNetwork(n); err != nil {
		return nil, err
	}
	return n, objectEvent(tx, api.ActionNetworkCreated, "networks", name)
}

// resolveSubnets turns auto addresses into subnets that no host route or
// address, and no other network of silo's, overlaps; and checks given
// ones the same way. It reads the host's routes, and sends nothing.
func resolveSubnets(tx *store.Tx, n *store.Network) error {
	others, err := tx.Networks()
	if err != nil {
		return err
	}
	// The other networks' bridges may be down (after a reboot): their
	// subnets are then not among the host's routes.
	var avoid []netip.Prefix
	owner := map[netip.Prefix]string{}
	for _, o := range others {
		for _, k := range []string{netIPv4, netIPv6} {
			if q, _ := netConfigPrefix(o, k); q.IsValid() && o.Name != n.Name {
				avoid = append(avoid, q.Masked())
				owner[q.Masked()] = o.Name
			}
		}
	}
	if n.Config[netIPv4] == "auto" || n.Config[netIPv6] == "auto" {
		v4, v6, err := network.AutoSubnets(avoid...)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		for k, p := range map[string]netip.Prefix{netIPv4: v4, netIPv6: v6} {
			if n.Config[k] == "auto" {
				n.Config[k] = p.String()
			}
		}
	}
	for _, k := range []string{netIPv4, netIPv6} {
		p, err := netConfigPrefix(n, k)
		if err != nil || !p.IsValid() {
			continue
		}
		for _, q := range avoid {
			if q.Overlaps(p) {
				return errkind.Wrap(errkind.Invalid, "network %s: %s overlaps network %s", n.Name, p.Masked(), owner[q])
			}
		}
		if err := network.CheckSubnet(p, n.Bridge); err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	return nil
}
