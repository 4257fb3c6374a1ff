package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network"
)

// What silo records of each nic, as volatile.DEVICE.KEY config keys, as
// LXD does: given once, kept across restarts, new for a copy.
const (
	volHwaddr   = "hwaddr"
	volHostName = "host_name"
	volIPv4     = "ipv4.address"
	volIPv6     = "ipv6.address"
)

func volatileKey(dev, key string) string { return "volatile." + dev + "." + key }

func isVolatile(key string) bool { return strings.HasPrefix(key, "volatile.") }

// freshNetwork forgets the MACs and addresses of inst's nics, given or
// asked for, so that a copy of it gets its own and takes none of its
// source's.
func freshNetwork(inst *store.Instance) {
	maps.DeleteFunc(inst.Config, func(k, _ string) bool { return isVolatile(k) })
	for _, d := range inst.Devices {
		if d["type"] == DeviceNIC {
			delete(d, "hwaddr")
			delete(d, "ipv4.address")
			delete(d, "ipv6.address")
		}
	}
}

// allocNICs gives each nic of inst (whose devices are devs, expanded) a
// MAC, a host-side name and its addresses on its network, recorded in
// inst.Config, and forgets those of nics that are gone. An address asked
// for (ipv4.address) must be in the network's subnet and free.
func allocNICs(tx *store.Tx, inst *store.Instance, devs store.Devices) error {
	taken, err := takenAddresses(tx, inst.Name)
	if err != nil {
		return err
	}
	if inst.Config == nil {
		inst.Config = map[string]string{}
	}
	for k := range inst.Config {
		dev, _, ok := strings.Cut(strings.TrimPrefix(k, "volatile."), ".")
		if ok && isVolatile(k) && devs[dev]["type"] != DeviceNIC {
			delete(inst.Config, k)
		}
	}
	for _, dev := range slices.Sorted(maps.Keys(devs)) {
		d := devs[dev]
		if d["type"] != DeviceNIC {
			continue
		}
		set := func(key, v string) {
			if v == "" {
				delete(inst.Config, volatileKey(dev, key))
			} else {
				inst.Config[volatileKey(dev, key)] = v
			}
		}
		get := func(key string) string { return inst.Config[volatileKey(dev, key)] }
		mac := d["hwaddr"]
		if owner, ok := taken[mac]; ok && mac != "" {
			return errkind.Wrap(errkind.AlreadyExists, "device %s: MAC address %s is taken by instance %s", dev, mac, owner)
		}
		if mac == "" {
			mac = get(volHwaddr)
		}
		// A kept MAC (a copy's, with --keep-addresses) that another
		// instance holds would put two on one bridge.
		for taken[mac] != "" || mac == "" {
			mac = network.RandomMAC().String()
		}
		set(volHwaddr, mac)
		taken[mac] = inst.Name
		if nicType(d) != nicBridged {
			set(volHostName, "")
			set(volIPv4, "")
			set(volIPv6, "")
			continue
		}
		if get(volHostName) == "" {
			set(volHostName, hostName())
		}
		n, err := networkFor(tx, d["network"])
		if err != nil {
			return fmt.Errorf("device %s: %w", dev, err)
		}
		v4, err := pickIPv4(n, dev, d["ipv4.address"], get(volIPv4), taken)
		if err != nil {
			return err
		}
		set(volIPv4, v4)
		v6, err := pickIPv6(n, dev, d["ipv6.address"], mac, taken)
		if err != nil {
			return err
		}
		set(volIPv6, v6)
		for _, a := range []string{v4, v6} {
			if a != "" {
				taken[a] = inst.Name
			}
		}
	}
	return nil
}

// hostName is a fresh name for the host's side of a veth.
func hostName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "veth" + hex.EncodeToString(b)
}

// takenAddresses maps the addresses and MACs other instances hold to
// their names.
func takenAddresses(tx *store.Tx, except string) (map[string]string, error) {
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	taken := map[string]string{}
	for _, inst := range insts {
		if inst.Name == except {
			continue
		}
		for k, v := range inst.Config {
			if isVolatile(k) && (strings.HasSuffix(k, "."+volIPv4) || strings.HasSuffix(k, "."+volIPv6) || strings.HasSuffix(k, "."+volHwaddr)) {
				taken[v] = inst.Name
			}
		}
	}
	return taken, nil
}

// pickIPv4 chooses a nic's IPv4 address on n: the one asked for, else the
// one it had if it is still good, else the lowest free one.
func pickIPv4(n *store.Network, dev, asked, had string, taken map[string]string) (string, error) {
	gw, err := netConfigPrefix(n, "ipv4.address")
	if err != nil || !gw.IsValid() {
		if asked != "" {
			return "", errkind.Wrap(errkind.Invalid, "device %s: network %s has no IPv4 subnet for ipv4.address=%s", dev, n.Name, asked)
		}
		return "", err
	}
	subnet := gw.Masked()
	usable := func(a netip.Addr) bool {
		return subnet.Contains(a) && a != gw.Addr() && a != subnet.Addr() && a != network.LastAddr(subnet)
	}
	if asked != "" {
		a, _ := netip.ParseAddr(asked)
		if !usable(a) {
			return "", errkind.Wrap(errkind.Invalid, "device %s: %s is not a free host address of network %s (%s)", dev, asked, n.Name, subnet)
		}
		if owner, ok := taken[asked]; ok {
			return "", errkind.Wrap(errkind.AlreadyExists, "device %s: %s is taken by instance %s", dev, asked, owner)
		}
		return asked, nil
	}
	if a, err := netip.ParseAddr(had); err == nil && usable(a) && taken[had] == "" {
		return had, nil
	}
	for a := subnet.Addr().Next(); usable(a) || a == gw.Addr(); a = a.Next() {
		if a != gw.Addr() && taken[a.String()] == "" {
			return a.String(), nil
		}
	}
	return "", errkind.Wrap(errkind.Unavailable, "network %s has no free IPv4 address left in %s", n.Name, subnet)
}

// pickIPv6 is a nic's IPv6 address on n: the one asked for, else the one
// router advertisements give its MAC (SLAAC), which silo sets itself.
func pickIPv6(n *store.Network, dev, asked, mac string, taken map[string]string) (string, error) {
	gw, err := netConfigPrefix(n, "ipv6.address")
	if err != nil || !gw.IsValid() {
		if asked != "" {
			return "", errkind.Wrap(errkind.Invalid, "device %s: network %s has no IPv6 subnet for ipv6.address=%s", dev, n.Name, asked)
		}
		return "", err
	}
	a := asked
	if a == "" {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return "", err
		}
		a = network.EUI64(gw.Masked(), hw).String()
	} else if p, _ := netip.ParseAddr(a); !gw.Masked().Contains(p) || p == gw.Addr() {
		return "", errkind.Wrap(errkind.Invalid, "device %s: %s is not a free host address of network %s (%s)", dev, a, n.Name, gw.Masked())
	}
	if owner, ok := taken[a]; ok {
		return "", errkind.Wrap(errkind.AlreadyExists, "device %s: %s is taken by instance %s", dev, a, owner)
	}
	return a, nil
}
