package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
)

// instanceOf is what silo info says of an instance.
func (e *env) instanceOf(name string) api.Instance {
	e.t.Helper()
	var i api.Instance
	e.apiJSON(&i, "info", name)
	return i
}

// Profiles apply in order and the instance's own settings last; a change
// to a profile reaches every instance that applies it; what is refused is
// refused with one line and changes nothing.
func TestProfiles(t *testing.T) {
	e := bootEnv(t, "dir")
	var ps []api.Profile
	e.apiJSON(&ps, "profile", "list")
	if len(ps) != 1 || ps[0].Name != "default" || ps[0].Devices["eth0"]["type"] != "nic" || ps[0].Devices["root"]["path"] != "/" {
		t.Fatalf("profiles at first use: %+v", ps)
	}
	e.ok("profile", "create", "small", "--description", "small machines")
	e.ok("profile", "set", "small", "limits.memory=128MiB", "user.tier=small")
	e.ok("profile", "create", "big")
	e.ok("profile", "set", "big", "limits.memory=1GiB", "limits.processes=500")
	e.ok("create", "bb", "a", "--profile", "default", "--profile", "small", "--profile", "big", "-c", "user.tier=mine")
	i := e.instanceOf("a")
	if got := strings.Join(i.Profiles, ","); got != "default,small,big" {
		t.Fatalf("profiles %s", got)
	}
	want := map[string]string{"limits.memory": "1GiB", "limits.processes": "500", "user.tier": "mine"}
	for k, v := range want {
		if i.ExpandedConfig[k] != v {
			t.Errorf("expanded %s=%q, want %q", k, i.ExpandedConfig[k], v)
		}
	}
	if _, ok := i.Config["limits.memory"]; ok {
		t.Errorf("the instance's own config holds its profiles' keys: %v", i.Config)
	}
	if out := e.ok("config", "show", "a", "--expanded"); !strings.Contains(out, "limits.memory: 1GiB") || !strings.Contains(out, "eth0:") {
		t.Errorf("config show --expanded:\n%s", out)
	}

	// A change to a profile reaches the instances that apply it.
	e.ok("profile", "set", "big", "limits.memory=2GiB")
	if got := e.instanceOf("a").ExpandedConfig["limits.memory"]; got != "2GiB" {
		t.Errorf("after the profile's change: limits.memory=%s", got)
	}
	e.ok("profile", "assign", "a", "default,small")
	if got := e.instanceOf("a").ExpandedConfig["limits.memory"]; got != "128MiB" {
		t.Errorf("after assign: limits.memory=%s", got)
	}

	// Rename follows into the instances; delete is refused while in use.
	e.ok("profile", "rename", "small", "tiny")
	if got := strings.Join(e.instanceOf("a").Profiles, ","); got != "default,tiny" {
		t.Errorf("after rename: %s", got)
	}
	e.fails(5, "used by instance a", "profile", "delete", "tiny")
	e.fails(2, "cannot be deleted", "profile", "delete", "default")
	e.fails(3, `profile "nope" not found`, "profile", "assign", "a", "default,nope")
	e.fails(3, `profile "nope" not found`, "create", "bb", "b", "--profile", "nope")
	if st := e.status("b"); st.State != "absent" {
		t.Fatalf("a refused create left %+v", st)
	}
	e.ok("profile", "copy", "tiny", "tiny2")
	e.ok("profile", "delete", "big")

	// edit replaces a profile with YAML from stdin.
	if r := e.runIn([]byte("description: edited\nconfig:\n  limits.cpu: \"1\"\ndevices:\n  web:\n    type: proxy\n    listen: tcp:127.0.0.1:8080\n    connect: tcp:127.0.0.1:80\n"),
		"profile", "edit", "tiny2"); r.code != 0 {
		t.Fatalf("profile edit: %s", r.err)
	}
	var p api.Profile
	e.apiJSON(&p, "profile", "show", "tiny2")
	if p.Description != "edited" || p.Config["limits.cpu"] != "1" || p.Devices["web"]["listen"] != "tcp:127.0.0.1:8080" {
		t.Errorf("after edit: %+v", p)
	}
	if r := e.runIn([]byte("devices:\n  x:\n    type: floppy\n"), "profile", "edit", "tiny2"); r.code != 2 || !strings.Contains(r.err, `unknown type "floppy"`) {
		t.Errorf("edit with a bad device: exit %d, %s", r.code, r.err)
	}
	e.consistent()
}

// Devices: added, set, removed on an instance; a profile's device is
// overridden by a set, hidden by a none; bad input is refused whole.
func TestDeviceCommands(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "a")
	e.ok("config", "device", "add", "a", "web", "proxy", "listen=tcp:127.0.0.1:8080", "connect=tcp:127.0.0.1:80")
	if out := e.ok("config", "device", "list", "a"); strings.TrimSpace(out) != "web" {
		t.Errorf("device list: %q", out)
	}
	e.ok("config", "device", "set", "a", "web", "listen=tcp:127.0.0.1:8081")
	if out := e.ok("config", "device", "show", "a"); !strings.Contains(out, "tcp:127.0.0.1:8081") {
		t.Errorf("device show:\n%s", out)
	}
	e.fails(4, "already has a device web", "config", "device", "add", "a", "web", "proxy", "listen=tcp:127.0.0.1:1", "connect=tcp:127.0.0.1:2")
	e.fails(2, `unknown type "floppy"`, "config", "device", "add", "a", "f", "floppy")
	e.fails(2, `unknown key "colour"`, "config", "device", "add", "a", "n", "nic", "network=silobr0", "colour=red")
	e.fails(2, "listen", "config", "device", "add", "a", "p", "proxy", "listen=tcp:nowhere", "connect=tcp:127.0.0.1:80")
	e.fails(3, "no interface nosuch0", "config", "device", "add", "a", "m", "nic", "nictype=macvlan", "parent=nosuch0")
	e.fails(2, "comes from its profiles", "config", "device", "remove", "a", "eth0")

	// Setting a key of a profile's device makes it the instance's own.
	e.ok("config", "device", "set", "a", "eth0", "security.mac_filtering=true")
	i := e.instanceOf("a")
	if i.Devices["eth0"]["network"] != "silobr0" || i.Devices["eth0"]["security.mac_filtering"] != "true" {
		t.Errorf("override: %v", i.Devices)
	}
	e.ok("config", "device", "remove", "a", "eth0")
	if i := e.instanceOf("a"); i.Devices["eth0"] != nil || i.ExpandedDevices["eth0"]["network"] != "silobr0" {
		t.Errorf("after the override is removed: own %v, expanded %v", i.Devices, i.ExpandedDevices)
	}
	// none hides the profile's nic.
	e.ok("config", "device", "add", "a", "eth0", "none")
	if i := e.instanceOf("a"); i.ExpandedDevices["eth0"] != nil || len(i.State.Network) != 0 {
		t.Errorf("a nic hidden by none: %v, %v", i.ExpandedDevices, i.State.Network)
	}
	e.ok("config", "device", "remove", "a", "web", "eth0")

	// A profile's device reaches its instances; the root disk stays on
	// the instance's pool.
	e.ok("profile", "device", "add", "default", "dns", "proxy", "listen=udp:127.0.0.1:5353", "connect=udp:127.0.0.1:53")
	if i := e.instanceOf("a"); i.ExpandedDevices["dns"]["listen"] != "udp:127.0.0.1:5353" {
		t.Errorf("profile device: %v", i.ExpandedDevices)
	}
	e.fails(2, "its root disk cannot move", "config", "device", "set", "a", "root", "pool=elsewhere")
	e.ok("profile", "device", "remove", "default", "dns")
	e.consistent()
}

// --network and --no-network as lxc's flags; a fixed address is checked
// against the subnet and the other instances; a copy gets its own MAC and
// address unless asked to keep them.
func TestNICAddresses(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "none", "--no-network")
	if i := e.instanceOf("none"); len(i.State.Network) != 0 {
		t.Errorf("--no-network: %v", i.State.Network)
	}
	e.fails(3, `network "nope" not found`, "create", "bb", "x", "--network", "nope")
	e.ok("network", "create", "lab", "ipv4.address=10.99.7.1/24", "ipv6.address=none")
	e.ok("create", "bb", "a", "--network", "lab")
	i := e.instanceOf("a")
	eth0 := i.State.Network["eth0"]
	if len(eth0.Addresses) != 1 || eth0.Addresses[0].Address != "10.99.7.2" || eth0.Addresses[0].Netmask != "24" || !strings.HasPrefix(eth0.Hwaddr, "00:16:3e:") {
		t.Fatalf("eth0 on lab: %+v", eth0)
	}
	e.ok("create", "bb", "b", "--network", "lab")
	e.ok("config", "device", "set", "b", "eth0", "ipv4.address=10.99.7.50")
	if got := e.instanceOf("b").State.Network["eth0"].Addresses[0].Address; got != "10.99.7.50" {
		t.Errorf("fixed address: %s", got)
	}
	e.fails(4, "10.99.7.2 is taken by instance a", "config", "device", "set", "b", "eth0", "ipv4.address=10.99.7.2")
	e.fails(2, "not a free host address", "config", "device", "set", "b", "eth0", "ipv4.address=10.99.8.9")
	e.fails(2, "not a free host address", "config", "device", "set", "b", "eth0", "ipv4.address=10.99.7.1")
	if got := e.instanceOf("b").State.Network["eth0"].Addresses[0].Address; got != "10.99.7.50" {
		t.Errorf("a refused change moved the address to %s", got)
	}
	e.ok("copy", "b", "c")
	c := e.instanceOf("c").State.Network["eth0"]
	if c.Hwaddr == e.instanceOf("b").State.Network["eth0"].Hwaddr || c.Addresses[0].Address == "10.99.7.50" {
		t.Errorf("the copy kept its source's MAC or address: %+v", c)
	}
	// A copy with snapshots, an export piped into an import, gets its own
	// too, and a refresh leaves them.
	e.ok("snapshot", "create", "b", "s")
	e.ok("copy", "b", "c2")
	c2 := e.instanceOf("c2").State.Network["eth0"]
	if c2.Hwaddr == e.instanceOf("b").State.Network["eth0"].Hwaddr || c2.Hwaddr == c.Hwaddr || c2.Addresses[0].Address == "10.99.7.50" || c2.Addresses[0].Address == c.Addresses[0].Address {
		t.Errorf("the copy with snapshots took another's MAC or address: %+v", c2)
	}
	refreshed(t, e, "b", "c2")
	if got := e.instanceOf("c2").State.Network["eth0"]; got.Hwaddr != c2.Hwaddr || got.Addresses[0].Address != c2.Addresses[0].Address {
		t.Errorf("a refresh changed the MAC or address of its target: %+v, was %+v", got, c2)
	}
	e.ok("delete", "c2")
	e.ok("delete", "b")
	// Kept where free: c holds its MAC and address still, and then no more.
	e.ok("copy", "c", "d", "--keep-addresses")
	if d := e.instanceOf("d").State.Network["eth0"]; d.Hwaddr == c.Hwaddr || d.Addresses[0].Address == c.Addresses[0].Address {
		t.Errorf("--keep-addresses took what c holds: %+v", d)
	}
	backup := filepath.Join(t.TempDir(), "c.tar.zst")
	e.ok("export", "c", "-o", backup)
	e.ok("delete", "c")
	e.ok("import", backup, "c", "--keep-addresses")
	if got := e.instanceOf("c").State.Network["eth0"]; got.Hwaddr != c.Hwaddr || got.Addresses[0].Address != c.Addresses[0].Address {
		t.Errorf("import --keep-addresses: %+v, want %+v", got, c)
	}
	var leases struct {
		Leases []api.NetworkLease `json:"leases"`
	}
	e.json(&leases, "network", "info", "lab")
	if len(leases.Leases) != 3 {
		t.Errorf("leases on lab: %+v", leases.Leases)
	}
	e.fails(5, "in use by instance a", "network", "delete", "lab")
	e.consistent()
}

// What a profile's config asks counts as the instance's own would: an
// isolated range; and a kernel forward is checked when it is recorded,
// not when a network next comes up.
func TestProfileConfigAndForwardChecks(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("profile", "create", "iso")
	e.ok("profile", "set", "iso", "security.idmap.isolated=true")
	e.ok("create", "bb", "plain")
	e.ok("create", "bb", "a", "--profile", "default", "--profile", "iso")
	e.ok("create", "bb", "b", "--profile", "default", "--profile", "iso")
	plain, a, b := e.instanceOf("plain").Idmap, e.instanceOf("a").Idmap, e.instanceOf("b").Idmap
	if len(a) == 0 || len(b) == 0 || a[0].HostID == plain[0].HostID || a[0].HostID == b[0].HostID {
		t.Errorf("isolated through a profile: plain %+v, a %+v, b %+v", plain, a, b)
	}

	e.fails(2, "--network and --no-network", "create", "bb", "x", "--network", "silobr0", "--no-network")
	e.fails(2, "--profile and --no-profiles", "create", "bb", "x", "--profile", "iso", "--no-profiles")
	e.fails(2, "forwards IPv4 only", "config", "device", "add", "a", "v6", "proxy", "listen=tcp:[::]:8080", "connect=tcp:[::1]:80", "nat=true")
	e.fails(2, "to the instance's own address", "config", "device", "add", "a", "lo", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80", "nat=true")
	e.ok("create", "bb", "offline", "--no-network")
	e.fails(2, "to the instance's own address", "config", "device", "add", "offline", "web", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:0.0.0.0:80", "nat=true")
	e.ok("config", "device", "add", "a", "web", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:0.0.0.0:80", "nat=true")
	e.fails(5, "instance a forwards it already", "config", "device", "add", "b", "web", "proxy", "listen=tcp:127.0.0.1:8080", "connect=tcp:0.0.0.0:80", "nat=true")
	e.ok("config", "device", "add", "b", "web", "proxy", "listen=tcp:0.0.0.0:8081", "connect=tcp:0.0.0.0:80", "nat=true")
	e.consistent()
}
