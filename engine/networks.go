package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network"
	"github.com/silo-dev/silo/network/proxy"
)

// user is what has a nic on a network: an instance or a profile.
type user struct{ kind, name string }

func (u user) String() string { return u.kind + " " + u.name }

// networkUsers lists what has a nic on network name: instances (by their
// devices once expanded) and profiles.
func networkUsers(tx *store.Tx, name string) ([]user, error) {
	var out []user
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		_, devs, err := expand(tx, inst)
		if err != nil {
			return nil, err
		}
		if len(nicsOn(devs, name)) > 0 {
			out = append(out, user{"instance", inst.Name})
		}
	}
	ps, err := tx.Profiles()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if len(nicsOn(p.Devices, name)) > 0 {
			out = append(out, user{"profile", p.Name})
		}
	}
	return out, nil
}

// bridgedNetworks lists the networks that the bridged nics of the device
// sets are on.
func bridgedNetworks(sets ...store.Devices) []string {
	nets := map[string]bool{}
	for _, devs := range sets {
		for _, d := range devs {
			if d["type"] == DeviceNIC && nicType(d) == nicBridged {
				nets[d["network"]] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(nets))
}

// nicsOn names the bridged nics among devs that are on network name.
func nicsOn(devs store.Devices, name string) []string {
	var out []string
	for _, dev := range slices.Sorted(maps.Keys(devs)) {
		if d := devs[dev]; d["type"] == DeviceNIC && nicType(d) == nicBridged && d["network"] == name {
			out = append(out, dev)
		}
	}
	return out
}

// netRef is what network n has on the host, for the journal.
func (e *Engine) netRef(n *store.Network) store.NetworkRef {
	return store.NetworkRef{Bridge: n.Bridge, Dir: e.networkDir(n.Name)}
}

// CreateNetwork makes a managed network: its record, then its bridge,
// rules and dnsmasq, at once.
func (e *Engine) CreateNetwork(ctx context.Context, name string, cfg map[string]string) error {
	if err := checkName("network", name); err != nil {
		return err
	}
	n := newNetwork(name)
	for k, v := range cfg {
		if err := checkNetworkConfig(k, v); err != nil {
			return err
		}
		n.Config[k] = v
	}
	if _, err := net.InterfaceByName(name); err == nil {
		return errkind.Wrap(errkind.AlreadyExists, "the host already has an interface called %s", name)
	}
	o, err := e.journal.Begin("network-create", name, func(tx *store.Tx, rec *store.Op) error {
		if tx.HasNetwork(name) {
			return errkind.Wrap(errkind.AlreadyExists, "network %q already exists", name)
		}
		rec.Reserved = append(rec.Reserved, store.Reservation("network", name))
		rec.Undo.Networks = []store.NetworkRef{e.netRef(n)}
		return resolveSubnets(tx, n)
	})
	if err != nil {
		return err
	}
	if err := e.ensure(ctx, name, n, ""); err != nil {
		return o.Fail(ctx, fmt.Errorf("create network %s: %w", name, err))
	}
	o.Step("ensured")
	return o.Commit(ctx, func(tx *store.Tx) error {
		if err := tx.PutNetwork(n); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionNetworkCreated, "networks", name)
	})
}

// DeleteNetwork removes a network nothing uses, and every trace of it.
func (e *Engine) DeleteNetwork(ctx context.Context, name string) error {
	// No ensure may bring it back half-way.
	lock, err := e.networkLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	o, err := e.journal.Begin("network-delete", name, func(tx *store.Tx, rec *store.Op) error {
		n, err := tx.Network(name)
		if err != nil {
			return err
		}
		users, err := networkUsers(tx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errkind.Wrap(errkind.Busy, "network %q is in use by %s", name, users[0])
		}
		rec.Reserved = append(rec.Reserved, store.Reservation("network", name))
		rec.Retire.Networks = []store.NetworkRef{e.netRef(n)}
		return nil
	})
	if err != nil {
		return err
	}
	if err := o.Commit(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteNetwork(name); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionNetworkDeleted, "networks", name)
	}); err != nil {
		return err
	}
	// The last network leaves no directory of networks behind, nor,
	// with no run left either, the run base it was made in.
	if err := fsutil.RemoveIfEmpty(filepath.Dir(e.networkDir(name))); err != nil {
		return err
	}
	e.removeRunBaseIfEmpty()
	return nil
}

// SetNetwork changes a network's config and brings the host to it. Its
// subnets stay while instances have addresses in them.
func (e *Engine) SetNetwork(ctx context.Context, name string, set map[string]string, unset []string) error {
	return e.SetNetworkIf(ctx, name, func(map[string]string) (map[string]string, []string, error) { return set, unset, nil })
}

// SetNetworkIf is SetNetwork with the keys to set and unset chosen by
// change from the network's config as the write's transaction reads it:
// a write that replaces the whole config, or that holds to an ETag,
// races no other. change may refuse.
func (e *Engine) SetNetworkIf(ctx context.Context, name string, change func(config map[string]string) (set map[string]string, unset []string, err error)) error {
	var before *store.Network
	err := e.store.Update(func(tx *store.Tx) error {
		n, err := tx.Network(name)
		if err != nil {
			return err
		}
		set, unset, err := change(maps.Clone(orEmpty(n.Config)))
		if err != nil {
			return err
		}
		for k, v := range set {
			if err := checkNetworkConfig(k, v); err != nil {
				return err
			}
		}
		for _, k := range unset {
			if !slices.Contains(networkKeys, k) {
				return checkNetworkConfig(k, "")
			}
		}
		before = &store.Network{Name: n.Name, Bridge: n.Bridge, Config: maps.Clone(n.Config), Created: n.Created}
		maps.Copy(n.Config, set)
		for _, k := range unset {
			delete(n.Config, k)
		}
		for _, k := range []string{netIPv4, netIPv6} {
			if n.Config[k] == before.Config[k] {
				continue
			}
			// Only instances hold addresses; a profile's nic has none.
			users, err := networkUsers(tx, name)
			if err != nil {
				return err
			}
			for _, u := range users {
				if u.kind == "instance" {
					return errkind.Wrap(errkind.Busy, "network %s: %s cannot change while %s has an address in it", name, k, u)
				}
			}
		}
		if err := resolveSubnets(tx, n); err != nil {
			return err
		}
		return putNetwork(tx, n)
	})
	if err != nil {
		return err
	}
	if err := e.ensureNetwork(ctx, name); err != nil {
		// The host keeps what it had: so does the record.
		_ = e.store.Update(func(tx *store.Tx) error { return putNetwork(tx, before) })
		_ = e.ensureNetwork(context.WithoutCancel(ctx), name)
		return err
	}
	return nil
}

// Networks lists the networks.
func (e *Engine) Networks() ([]*api.Network, error) {
	return listAPI(e, (*store.Tx).Networks, apiNetwork)
}

// NetworkInfo returns a network and the addresses its nics hold.
func (e *Engine) NetworkInfo(name string) (*api.Network, []api.NetworkLease, error) {
	var out *api.Network
	leases := []api.NetworkLease{}
	err := e.store.View(func(tx *store.Tx) error {
		n, err := tx.Network(name)
		if err != nil {
			return err
		}
		if out, err = apiNetwork(tx, n); err != nil {
			return err
		}
		hosts, err := hostsOn(tx, n)
		for _, h := range hosts {
			for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
				if a.IsValid() {
					leases = append(leases, api.NetworkLease{Hostname: h.Name, Hwaddr: h.MAC.String(), Address: a.String(), Type: "static", Device: h.Device})
				}
			}
		}
		return err
	})
	return out, leases, err
}

func apiNetwork(tx *store.Tx, n *store.Network) (*api.Network, error) {
	users, err := networkUsers(tx, n.Name)
	if err != nil {
		return nil, err
	}
	status := "Created"
	if _, err := net.InterfaceByName(n.Bridge); err != nil {
		status = "Unavailable"
	}
	usedBy := []string{}
	for _, u := range users {
		usedBy = append(usedBy, api.Path(u.kind+"s", u.name))
	}
	return &api.Network{Name: n.Name, Type: "bridge", Managed: true, Config: orEmpty(maps.Clone(n.Config)),
		Status: status, UsedBy: usedBy, CreatedAt: n.Created}, nil
}

// host is a nic on a network, as its dnsmasq and rules know it.
type host struct {
	network.Host
	Device string
}

// hostsOn lists the nics on n, from the records of every instance.
func hostsOn(tx *store.Tx, n *store.Network) ([]host, error) {
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	var out []host
	for _, inst := range insts {
		x, err := expanded(tx, inst)
		if err != nil {
			return nil, err
		}
		for _, dev := range nicsOn(x.Devices, n.Name) {
			out = append(out, nicHost(x, dev))
		}
	}
	return out, nil
}

// nicHost is what inst records of its nic dev.
func nicHost(inst *store.Instance, dev string) host {
	mac, _ := net.ParseMAC(inst.Config[volatileKey(dev, volHwaddr)])
	v4, _ := netip.ParseAddr(inst.Config[volatileKey(dev, volIPv4)])
	v6, _ := netip.ParseAddr(inst.Config[volatileKey(dev, volIPv6)])
	return host{Host: network.Host{Name: inst.Name, MAC: mac, IPv4: v4, IPv6: v6}, Device: dev}
}

// desired is the whole state network n should have on the host, from
// the records: the kernel forwards of the instances that run, and of
// starting, whose start is under way.
func desired(tx *store.Tx, e *Engine, n *store.Network, starting string) (network.Net, error) {
	v4, err := netConfigPrefix(n, netIPv4)
	if err != nil {
		return network.Net{}, err
	}
	v6, err := netConfigPrefix(n, netIPv6)
	if err != nil {
		return network.Net{}, err
	}
	// NAT only for a family that has a subnet.
	want := network.Net{Name: n.Name, Bridge: n.Bridge, IPv4: v4, IPv4NAT: v4.IsValid() && n.Config[netIPv4NAT] == "true",
		IPv6: v6, IPv6NAT: v6.IsValid() && n.Config[netIPv6NAT] == "true", Domain: n.Config[netDomain], Dir: e.networkDir(n.Name)}
	insts, err := tx.Instances()
	if err != nil {
		return want, err
	}
	for _, inst := range insts {
		x, err := expanded(tx, inst)
		if err != nil {
			return want, err
		}
		for _, dev := range nicsOn(x.Devices, n.Name) {
			h, d := nicHost(x, dev), x.Devices[dev]
			want.Hosts = append(want.Hosts, h.Host)
			f := network.Filter{HostName: x.Config[volatileKey(dev, volHostName)],
				MAC: h.MAC, IPv4: h.IPv4, IPv6: h.IPv6, MACFiltering: d["security.mac_filtering"] == "true",
				IPv4Filtering: d["security.ipv4_filtering"] == "true", IPv6Filtering: d["security.ipv6_filtering"] == "true"}
			// A nic that filters nothing has no rules: the others' stay
			// as they are when it comes or goes.
			if f.MACFiltering || f.IPv4Filtering || f.IPv6Filtering {
				want.Filters = append(want.Filters, f)
			}
		}
		if inst.Name != starting {
			if run, err := liveRun(tx, inst.Name); err != nil || run == nil {
				continue
			}
		}
		want.Forwards = append(want.Forwards, natForwards(x, n.Name)...)
	}
	return want, nil
}

// natProxy is a proxy device that forwards in the kernel (nat=true).
type natProxy struct {
	dev             string
	listen, connect proxy.Endpoint
}

// natProxies lists the proxies of devs that forward in the kernel, by
// device name. checkDevice has parsed their endpoints already.
func natProxies(devs store.Devices) []natProxy {
	var out []natProxy
	for _, dev := range slices.Sorted(maps.Keys(devs)) {
		d := devs[dev]
		if d["type"] != DeviceProxy || d["nat"] != "true" {
			continue
		}
		l, _ := proxy.ParseEndpoint(d["listen"])
		c, _ := proxy.ParseEndpoint(d["connect"])
		out = append(out, natProxy{dev, l, c})
	}
	return out
}

// natForwards are the kernel forwards of inst's proxies with nat=true
// into its address on network name. checkNAT vetted them when they were
// recorded.
func natForwards(inst *store.Instance, name string) []network.Forward {
	var out []network.Forward
	nics := nicsOn(inst.Devices, name)
	for _, p := range natProxies(inst.Devices) {
		target, err := natTarget(inst, p.dev, p.connect.Addr.Addr())
		if err != nil {
			continue
		}
		for _, nic := range nics {
			if a, _ := netip.ParseAddr(inst.Config[volatileKey(nic, volIPv4)]); a == target {
				out = append(out, network.Forward{Proto: p.listen.Proto, Listen: p.listen.Addr, Target: netip.AddrPortFrom(target, p.connect.Addr.Port())})
			}
		}
	}
	return out
}

// checkNAT checks the proxies with nat=true of inst (expanded, its nics
// given their addresses): each forwards IPv4 to the instance's own
// address, and listens where no other instance's does.
func checkNAT(tx *store.Tx, inst *store.Instance) error {
	mine := natProxies(inst.Devices)
	for _, p := range mine {
		if !p.listen.Addr.Addr().Is4() || !p.connect.Addr.Addr().Is4() {
			return errkind.Wrap(errkind.Invalid, "device %s: nat=true forwards IPv4 only: listen and connect on IPv4 addresses, or forward in userspace (nat=false)", p.dev)
		}
		if _, err := natTarget(inst, p.dev, p.connect.Addr.Addr()); err != nil {
			return err
		}
	}
	if len(mine) == 0 {
		return nil
	}
	insts, err := tx.Instances()
	if err != nil {
		return err
	}
	for _, other := range insts {
		if other.Name == inst.Name {
			continue
		}
		x, err := expanded(tx, other)
		if err != nil {
			return err
		}
		for _, theirs := range natProxies(x.Devices) {
			for _, p := range mine {
				if clashes(p.listen, theirs.listen) {
					return errkind.Wrap(errkind.Busy, "listen %s: instance %s forwards it already (device %s)", x.Devices[theirs.dev]["listen"], other.Name, theirs.dev)
				}
			}
		}
	}
	return nil
}

// clashes says whether two listen endpoints take the same port: the same
// protocol and port, and the same address or a wildcard on either side.
func clashes(a, b proxy.Endpoint) bool {
	return a.Proto == b.Proto && a.Addr.Port() == b.Addr.Port() &&
		(a.Addr.Addr() == b.Addr.Addr() || a.Addr.Addr().IsUnspecified() || b.Addr.Addr().IsUnspecified())
}

// natTarget is the address a nat proxy forwards to: the instance's own
// IPv4 address on a nic, which connect names (or 0.0.0.0 for its first).
func natTarget(inst *store.Instance, dev string, connect netip.Addr) (netip.Addr, error) {
	var first netip.Addr
	for _, nic := range slices.Sorted(maps.Keys(inst.Devices)) {
		a, err := netip.ParseAddr(inst.Config[volatileKey(nic, volIPv4)])
		if err != nil {
			continue
		}
		if a == connect {
			return a, nil
		}
		if !first.IsValid() {
			first = a
		}
	}
	if connect.IsUnspecified() && first.IsValid() {
		return first, nil
	}
	return netip.Addr{}, errkind.Wrap(errkind.Invalid, "device %s: nat=true forwards in the kernel to the instance's own address: connect to one of its nics' IPv4 addresses, not %s", dev, connect)
}

// ensureNetwork brings network name on the host to what the records say.
func (e *Engine) ensureNetwork(ctx context.Context, name string) error {
	return e.ensure(ctx, name, nil, "")
}

// ensure brings network name on the host to what the records say, under
// the network's lock; a network deleted meanwhile is left alone. fresh is
// the record of a network being made, not yet in the store. starting
// names an instance whose start is under way: its kernel forwards are
// installed as a running instance's are.
func (e *Engine) ensure(ctx context.Context, name string, fresh *store.Network, starting string) error {
	lock, err := e.networkLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	nets := filepath.Dir(e.networkDir(name))
	if err := e.makeRunBase(nets); err != nil {
		return err
	}
	if err := os.Chmod(nets, 0o711); err != nil {
		return err
	}
	var want network.Net
	gone := false
	err = e.store.View(func(tx *store.Tx) error {
		n := fresh
		if n == nil {
			var err error
			if n, err = tx.Network(name); errors.Is(err, errkind.NotFound) {
				gone = true
				return nil
			} else if err != nil {
				return err
			}
		}
		var err error
		want, err = desired(tx, e, n, starting)
		return err
	})
	if err != nil || gone {
		return err
	}
	return network.Ensure(ctx, want)
}

// networkLock serializes what changes network name on the host.
func (e *Engine) networkLock(name string) (*os.File, error) {
	return fsutil.LockFile(e.path("locks", "network-"+name+".lock"), syscall.LOCK_EX)
}

// networksByName maps the networks' names to their records.
func networksByName(tx *store.Tx) (map[string]*store.Network, error) {
	ns, err := tx.Networks()
	out := map[string]*store.Network{}
	for _, n := range ns {
		out[n.Name] = n
	}
	return out, err
}

// nicCounters fills in the traffic of the nics of the running instance
// whose init is pid.
func nicCounters(pid int, nics map[string]api.InstanceStateNetwork) {
	for name, n := range nics {
		rx, tx, err := network.Counters(pid, name)
		if err != nil {
			continue
		}
		n.Counters.BytesReceived, n.Counters.BytesSent = int64(rx), int64(tx)
		nics[name] = n
	}
}

// refreshNetworks brings the networks that are up on the host to what
// the records now say, after an instance went or was renamed: its name
// leaves DNS and its lease goes. A network that is down waits for the
// next start of an instance on it.
func (e *Engine) refreshNetworks(ctx context.Context) {
	var ns []*store.Network
	_ = e.store.View(func(tx *store.Tx) (err error) { ns, err = tx.Networks(); return err })
	for _, n := range ns {
		if _, err := net.InterfaceByName(n.Bridge); err != nil {
			continue
		}
		if err := e.ensureNetwork(ctx, n.Name); err != nil {
			slog.Warn("bring a network up to date", "network", n.Name, "error", err)
		}
	}
}

// putNetwork writes a changed network, and logs the change.
func putNetwork(tx *store.Tx, n *store.Network) error {
	if err := tx.PutNetwork(n); err != nil {
		return err
	}
	return objectEvent(tx, api.ActionNetworkUpdated, "networks", n.Name)
}
