package engine

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
)

// Device types.
const (
	DeviceDisk  = "disk"
	DeviceNIC   = "nic"
	DeviceProxy = "proxy"
	// deviceNone hides a profile's device of the same name, as in LXD.
	deviceNone = "none"
)

// deviceKeys are the keys each device type takes, besides its type.
var deviceKeys = map[string][]string{
	DeviceNIC: {"name", "network", "nictype", "parent", "hwaddr", "mtu", "ipv4.address", "ipv6.address",
		"security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering"},
	DeviceProxy: {"listen", "connect", "nat", "bind"},
	DeviceDisk:  {"path", "pool", "size", "source", "readonly", "shift"},
	deviceNone:  {},
}

// Kinds of nic.
const (
	nicBridged = "bridged"
	nicMacvlan = "macvlan"
)

// ParseDevice reads a device's type and key=value pairs, and checks them.
func ParseDevice(name, typ string, pairs []string) (store.Device, error) {
	d := store.Device{"type": typ}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, errkind.Wrap(errkind.Invalid, "device %s: %q: write key=value", name, p)
		}
		if k == "type" {
			return nil, errkind.Wrap(errkind.Invalid, "device %s: its type is given apart, and stays", name)
		}
		d[k] = v
	}
	if err := checkDevice(name, d); err != nil {
		return nil, err
	}
	return d, checkParent(name, d)
}

// checkParent checks, as a device is given, that the host interface a
// macvlan nic sits on exists. (A parent that goes away later only stops
// the instance's next start, saying why.)
func checkParent(name string, d store.Device) error {
	if p := d["parent"]; p != "" {
		if _, err := net.InterfaceByName(p); err != nil {
			return errkind.Wrap(errkind.NotFound, "device %s: the host has no interface %s (parent=)", name, p)
		}
	}
	return nil
}

// checkDevice checks one device on its own: its name, type, keys and
// values. What depends on the other devices and on the host is checked
// when they are put together (checkExpanded).
func checkDevice(name string, d store.Device) error {
	if err := checkName("device", name); err != nil {
		return err
	}
	typ := d["type"]
	keys, ok := deviceKeys[typ]
	if !ok {
		return errkind.Wrap(errkind.Invalid, "device %s: unknown type %q (nic, proxy, disk, none)", name, typ)
	}
	for k := range d {
		if k != "type" && !slices.Contains(keys, k) {
			return errkind.Wrap(errkind.Invalid, "device %s: unknown key %q for a %s (%s)", name, k, typ, strings.Join(keys, ", "))
		}
	}
	bad := func(key, why string) error {
		return errkind.Wrap(errkind.Invalid, "device %s: %s=%q: %s", name, key, d[key], why)
	}
	for _, k := range []string{"security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering", "nat", "readonly", "shift"} {
		if v, ok := d[k]; ok && v != "true" && v != "false" {
			return bad(k, "give true or false")
		}
	}
	switch typ {
	case DeviceNIC:
		return checkNIC(name, d, bad)
	case DeviceProxy:
		return checkProxy(name, d, bad)
	case DeviceDisk:
		return checkDisk(name, d, bad)
	}
	return nil
}

// checkDisk checks a disk device: the root filesystem (path=/ on a pool),
// a custom volume (pool= and source=) or a directory of the host's
// (source=) mounted at path in the instance.
func checkDisk(name string, d store.Device, bad func(key, why string) error) error {
	p := d["path"]
	if p == "/" {
		if d["pool"] == "" {
			return errkind.Wrap(errkind.Invalid, "device %s: the root disk names its pool (pool=)", name)
		}
		for _, k := range []string{"source", "readonly", "shift"} {
			if _, ok := d[k]; ok {
				return bad(k, "the root disk is the instance's own volume")
			}
		}
		if v, ok := d["size"]; ok {
			if _, err := units.ParseSize(v); err != nil || v == "" {
				return bad("size", "give bytes or a number with KiB, MiB, GiB or TiB")
			}
		}
		return nil
	}
	if !path.IsAbs(p) || path.Clean(p) != p {
		return bad("path", "give an absolute path in the instance, like /data")
	}
	if _, ok := d["size"]; ok {
		return bad("size", "a disk's size is its volume's: set it on the volume")
	}
	src := d["source"]
	switch {
	case src == "":
		return errkind.Wrap(errkind.Invalid, "device %s: a disk at %s names its source: a directory of the host's, or a custom volume with pool=", name, p)
	case d["pool"] == "" && !path.IsAbs(src):
		return bad("source", "give an absolute path on the host, or a custom volume with pool=")
	case d["pool"] != "" && d["shift"] != "":
		return bad("shift", "a custom volume is always shown to an instance with its own IDs")
	}
	return nil
}

func checkNIC(name string, d store.Device, bad func(key, why string) error) error {
	if err := checkName("interface", nicName(name, d)); err != nil {
		return fmt.Errorf("device %s: %w", name, err)
	}
	switch nicType(d) {
	case nicBridged:
		if d["network"] == "" {
			return errkind.Wrap(errkind.Invalid, "device %s: a bridged nic names its network (network=)", name)
		}
		if d["parent"] != "" {
			return bad("parent", "a nic on a network takes its bridge from it")
		}
	case nicMacvlan:
		if d["parent"] == "" {
			return errkind.Wrap(errkind.Invalid, "device %s: a macvlan nic names the host interface it sits on (parent=)", name)
		}
		for _, k := range []string{"network", "ipv4.address", "ipv6.address", "security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering"} {
			if _, ok := d[k]; ok {
				return bad(k, "a macvlan nic is on the host's own network, whose addresses silo does not give")
			}
		}
	default:
		return bad("nictype", "use bridged or macvlan")
	}
	if v, ok := d["hwaddr"]; ok {
		mac, err := net.ParseMAC(v)
		if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
			return bad("hwaddr", "not a unicast MAC address like 00:16:3e:01:02:03")
		}
	}
	if v, ok := d["mtu"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1280 || n > 65535 {
			return bad("mtu", "give a size from 1280 to 65535")
		}
	}
	for k, want := range map[string]bool{"ipv4.address": true, "ipv6.address": false} {
		v, ok := d[k]
		if !ok {
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Is4() != want || a.Zone() != "" {
			return bad(k, "not an address of that family")
		}
	}
	return nil
}

// nicType is a nic's kind: bridged unless it says otherwise.
func nicType(d store.Device) string {
	if t := d["nictype"]; t != "" {
		return t
	}
	return nicBridged
}

// nicName is the name a nic has inside: its name key, else the device's.
func nicName(dev string, d store.Device) string {
	if n := d["name"]; n != "" {
		return n
	}
	return dev
}

// rootDisk finds the root disk among devs.
func rootDisk(devs store.Devices) (string, store.Device) {
	for _, name := range slices.Sorted(maps.Keys(devs)) {
		if d := devs[name]; d["type"] == DeviceDisk && d["path"] == "/" {
			return name, d
		}
	}
	return "", nil
}

// checkExpanded checks an instance's devices once profiles are applied:
// one root disk on the instance's pool, and no two nics, or two proxies,
// that would clash.
func checkExpanded(inst *store.Instance, devs store.Devices) error {
	root, d := rootDisk(devs)
	if root == "" {
		return errkind.Wrap(errkind.Invalid, "instance %s has no root disk: give it a disk device with path=/ and pool=, or a profile that has one", inst.Name)
	}
	if d["pool"] != inst.Pool {
		return errkind.Wrap(errkind.Invalid, "instance %s lives on pool %q, not %q: its root disk cannot move by a change of config", inst.Name, inst.Pool, d["pool"])
	}
	inside, listens, mounts := map[string]string{}, map[string]string{}, map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(devs)) {
		d := devs[name]
		switch d["type"] {
		case DeviceDisk:
			if name != root && d["path"] == "/" {
				return errkind.Wrap(errkind.Invalid, "instance %s has two root disks: %s and %s", inst.Name, root, name)
			}
			if other, ok := mounts[d["path"]]; ok {
				return errkind.Wrap(errkind.Invalid, "instance %s: disks %s and %s are both mounted at %s", inst.Name, other, name, d["path"])
			}
			mounts[d["path"]] = name
		case DeviceNIC:
			n := nicName(name, d)
			if other, ok := inside[n]; ok {
				return errkind.Wrap(errkind.Invalid, "instance %s: nics %s and %s are both called %s inside", inst.Name, other, name, n)
			}
			inside[n] = name
		case DeviceProxy:
			if other, ok := listens[d["listen"]]; ok {
				return errkind.Wrap(errkind.Invalid, "instance %s: proxies %s and %s both listen on %s", inst.Name, other, name, d["listen"])
			}
			listens[d["listen"]] = name
		}
	}
	return nil
}
