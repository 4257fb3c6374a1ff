package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network"
	"github.com/silo-dev/silo/network/proxy"
	"github.com/silo-dev/silo/runtime/container"
)

// nicOf is how nic dev of inst (expanded) is made in a container.
func (e *Engine) nicOf(inst *store.Instance, dev string) (network.NIC, error) {
	d := inst.Devices[dev]
	mac, err := net.ParseMAC(inst.Config[volatileKey(dev, volHwaddr)])
	if err != nil {
		return network.NIC{}, fmt.Errorf("device %s has no MAC address recorded: %w", dev, err)
	}
	nic := network.NIC{Name: nicName(dev, d), MAC: mac}
	if v := d["mtu"]; v != "" {
		nic.MTU, _ = strconv.Atoi(v)
	}
	if nicType(d) == nicMacvlan {
		nic.Parent = d["parent"]
		return nic, nil
	}
	var n *store.Network
	if err := e.store.View(func(tx *store.Tx) error { n, err = tx.Network(d["network"]); return err }); err != nil {
		return nic, fmt.Errorf("device %s: %w", dev, err)
	}
	nic.Bridge, nic.HostName = n.Bridge, inst.Config[volatileKey(dev, volHostName)]
	for _, fam := range []struct {
		key, vol string
		addr     *netip.Prefix
		gw       *netip.Addr
	}{{netIPv4, volIPv4, &nic.IPv4, &nic.Gateway4}, {netIPv6, volIPv6, &nic.IPv6, &nic.Gateway6}} {
		gw, err := netConfigPrefix(n, fam.key)
		a, aerr := netip.ParseAddr(inst.Config[volatileKey(dev, fam.vol)])
		if err != nil || !gw.IsValid() || aerr != nil {
			continue
		}
		*fam.addr, *fam.gw = netip.PrefixFrom(a, gw.Bits()), gw.Addr()
	}
	return nic, nil
}

// proxyPidFile is where the forwarder of proxy device dev of a running
// instance records itself: in the run directory, which goes with the run.
func (e *Engine) proxyPidFile(name, dev string) string {
	return filepath.Join(e.runDir(name), "proxy-"+dev+".pid")
}

// plug adds device dev of inst (expanded) to the container whose init is
// pid: a nic, the forwarder of a proxy that forwards in userspace, or a
// disk other than the root.
func (e *Engine) plug(ctx context.Context, pid int, inst *store.Instance, dev string) error {
	d := inst.Devices[dev]
	switch d["type"] {
	case DeviceDisk:
		if isDisk(d) {
			return e.mountDisk(ctx, pid, inst, dev, false)
		}
	case DeviceNIC:
		nic, err := e.nicOf(inst, dev)
		if err != nil {
			return err
		}
		// A start or a hot-plug that was killed half-way may have left
		// the host's side of this nic behind.
		if nic.HostName != "" {
			if err := network.DeleteVeth(nic.HostName); err != nil {
				return fmt.Errorf("device %s: %w", dev, err)
			}
		}
		if err := network.Attach(pid, nic); err != nil {
			if errors.Is(err, syscall.EXFULL) {
				return errkind.Wrap(errkind.Unavailable, "device %s: bridge %s has all the 1023 ports a Linux bridge takes: put this instance on another network", dev, nic.Bridge)
			}
			return fmt.Errorf("device %s: %w", dev, err)
		}
	case DeviceProxy:
		if d["nat"] == "true" {
			// A rule of the network's, from the records; but a service
			// of the host's that listens there would lose its traffic.
			return checkFree(d["listen"])
		}
		l, _ := proxy.ParseEndpoint(d["listen"])
		c, _ := proxy.ParseEndpoint(d["connect"])
		pidFile := e.proxyPidFile(inst.Name, dev)
		start, err := container.ProcStart(pid)
		if err != nil {
			return err
		}
		err = proxy.Spawn(proxy.Config{Listen: l, Connect: c, Pid: pid, PidStart: start, PidFile: pidFile,
			LogFile: strings.TrimSuffix(pidFile, ".pid") + ".log"})
		if err != nil {
			return fmt.Errorf("device %s: %w", dev, err)
		}
	}
	return nil
}

// unplug removes device dev of inst (expanded) from its running container.
func (e *Engine) unplug(ctx context.Context, run *store.Run, inst *store.Instance, dev string) error {
	d := inst.Devices[dev]
	switch d["type"] {
	case DeviceDisk:
		if isDisk(d) {
			return e.mountDisk(ctx, run.Pid, inst, dev, true)
		}
	case DeviceNIC:
		nic, err := e.nicOf(inst, dev)
		if err != nil {
			return err
		}
		if err := network.Detach(run.Pid, nic); err != nil {
			return fmt.Errorf("device %s: %w", dev, err)
		}
	case DeviceProxy:
		if d["nat"] != "true" {
			return proxy.Stop(e.proxyPidFile(inst.Name, dev))
		}
	}
	return nil
}

// plugAll sets up the devices of instance name's container, created and
// not yet started, whose init is pid: its networks on the host, its nics
// inside, its forwarders and its disks. Init then finds them ready from
// its first instruction.
func (e *Engine) plugAll(ctx context.Context, name string, pid int) error {
	var inst *store.Instance
	err := e.store.View(func(tx *store.Tx) error {
		raw, err := tx.Instance(name)
		if err != nil {
			return err
		}
		inst, err = expanded(tx, raw)
		return err
	})
	if err != nil {
		return err
	}
	// Each boot, a reboot from inside too, finds its networks as the
	// records say, whatever went away behind silo's back.
	if err := e.ensureNetworksOf(ctx, inst); err != nil {
		return err
	}
	// A reboot from inside makes a new namespace: the forwarders of the
	// last boot connect into the old one.
	e.stopProxies(name)
	for _, dev := range plugOrder(inst.Devices) {
		if err := e.plug(ctx, pid, inst, dev); err != nil {
			e.stopProxies(name)
			return err // the start names the instance
		}
	}
	return nil
}

// plugOrder is the order devs are plugged in: the nics by their names
// inside, the first of which has the default route (and names the
// resolver: see resolvConf); then the disks by their paths, so that one
// mounted inside another's path comes after it; then the others.
func plugOrder(devs store.Devices) []string {
	rank := func(d store.Device) int {
		switch {
		case d["type"] == DeviceNIC:
			return 0
		case isDisk(d):
			return 1
		}
		return 2
	}
	names := slices.Collect(maps.Keys(devs))
	slices.SortFunc(names, func(a, b string) int {
		da, db := devs[a], devs[b]
		if c := rank(da) - rank(db); c != 0 {
			return c
		}
		switch rank(da) {
		case 0:
			return strings.Compare(nicName(a, da), nicName(b, db))
		case 1:
			return strings.Compare(da["path"], db["path"])
		}
		return strings.Compare(a, b)
	})
	return names
}

// ensureNetworksOf brings up the networks inst (expanded) has nics on.
func (e *Engine) ensureNetworksOf(ctx context.Context, inst *store.Instance) error {
	for _, n := range bridgedNetworks(inst.Devices) {
		if err := e.ensure(ctx, n, nil, inst.Name); err != nil {
			return fmt.Errorf("start %s: network %s: %w", inst.Name, n, err)
		}
	}
	return nil
}

// stopProxies stops the forwarders of instance name's run.
func (e *Engine) stopProxies(name string) {
	files, _ := filepath.Glob(filepath.Join(e.runDir(name), "proxy-*.pid"))
	for _, f := range files {
		if err := proxy.Stop(f); err != nil {
			slog.Warn("stop a port forwarder", "instance", name, "pidfile", f, "error", err)
		}
		os.Remove(f)
	}
}

// unplugRun removes what a run of instance name that ended left on the
// host: its forwarders, and the host side of any of its veths, links,
// that a start cut short left behind (the kernel removes the others with
// the container's namespace).
func (e *Engine) unplugRun(name string, links []string) {
	e.stopProxies(name)
	for _, l := range links {
		if err := network.DeleteVeth(l); err != nil {
			slog.Warn("remove a veth left behind", "instance", name, "link", l, "error", err)
		}
	}
}

// hostTraces are what a run of inst may leave on the host: the host
// sides of its veths, and whether it has kernel forwards.
func hostTraces(tx *store.Tx, inst *store.Instance) (links []string, forwards bool, err error) {
	x, err := expanded(tx, inst)
	if err != nil {
		return nil, false, err
	}
	for dev, d := range x.Devices {
		switch {
		case d["type"] == DeviceNIC && x.Config[volatileKey(dev, volHostName)] != "":
			links = append(links, x.Config[volatileKey(dev, volHostName)])
		case d["type"] == DeviceProxy && d["nat"] == "true":
			forwards = true
		}
	}
	return links, forwards, nil
}

// resolvConf is the resolver config of inst (expanded): the dnsmasq of
// the network of its first nic, by the name inside; nil without one.
func (e *Engine) resolvConf(inst *store.Instance) ([]byte, error) {
	byInside := map[string]string{}
	for dev, d := range inst.Devices {
		if d["type"] == DeviceNIC && nicType(d) == nicBridged {
			byInside[nicName(dev, d)] = d["network"]
		}
	}
	if len(byInside) == 0 {
		return nil, nil
	}
	var n *store.Network
	err := e.store.View(func(tx *store.Tx) (err error) {
		n, err = tx.Network(byInside[slices.Sorted(maps.Keys(byInside))[0]])
		return err
	})
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# silo's dnsmasq on network " + n.Name + ", written at each start\n")
	for _, k := range []string{netIPv4, netIPv6} {
		if p, _ := netConfigPrefix(n, k); p.IsValid() {
			b.WriteString("nameserver " + p.Addr().String() + "\n")
		}
	}
	if d := n.Config[netDomain]; d != "" {
		b.WriteString("search " + d + "\n")
	}
	return []byte(b.String()), nil
}

// checkFree says whether the host's own services leave listen free, by
// binding it a moment: nothing is sent.
func checkFree(listen string) error {
	l, err := proxy.ParseEndpoint(listen)
	if err != nil {
		return err
	}
	var c io.Closer
	if l.Proto == "udp" {
		c, err = net.ListenPacket("udp4", l.Addr.String())
	} else {
		c, err = net.Listen("tcp4", l.Addr.String())
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return errkind.Wrap(errkind.Busy, "listen %s: the address is already in use", listen)
	}
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	return c.Close()
}
