package main

import (
	"fmt"
	"strings"
	"testing"
)

// A kill -9 at each step of a network's create and delete, of a nic's and
// a forward's plugging into a running instance and unplugging, and of a
// start, then any silo command: the operation is done or undone, and the
// host matches the records: no veth, table, dnsmasq or forwarder of
// nothing recorded, and every network wholly there or wholly gone.
func TestNetCrashSafety(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "r")
	e.ok("network", "create", "hp", "ipv4.address=10.99.50.1/24", "ipv6.address=none")
	dev := func(name string, n int) string { return fmt.Sprintf("%s%d", name, n) }
	// plugged says whether r has nic d, and checks that its records and
	// the running instance agree on it and on its address.
	plugged := func(e *env, d string) bool {
		i := e.instanceOf("r")
		_, recorded := i.ExpandedDevices[d]
		r := e.run("exec", "r", "--", "ip", "-4", "-o", "addr", "show", "dev", d)
		if inside := r.code == 0; recorded != inside {
			e.t.Fatalf("nic %s of r: recorded %v, inside %v", d, recorded, inside)
		}
		if recorded {
			if a := i.State.Network[d].Addresses; len(a) != 1 || !strings.Contains(r.out, "inet "+a[0].Address+"/24 ") {
				e.t.Fatalf("nic %s of r: recorded %v, inside:\n%s", d, a, r.out)
			}
		}
		return recorded
	}
	hasDevice := func(e *env, d string) bool { _, ok := e.instanceOf("r").Devices[d]; return ok }
	cases := []crashCase{
		{
			name: "create", kind: "network-create", steps: []string{"begun", "ensured", "committed"}, done: []string{"committed"},
			cmd:   func(n int) []string { return []string{"network", "create", dev("c", n)} },
			state: func(e *env, n int) bool { return e.run("network", "info", dev("c", n)).code == 0 },
		},
		{
			name: "delete", kind: "network-delete", steps: []string{"begun", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { e.ok("network", "create", dev("d", n)) },
			cmd:   func(n int) []string { return []string{"network", "delete", dev("d", n)} },
			state: func(e *env, n int) bool { return e.run("network", "info", dev("d", n)).code == 3 },
		},
		{
			name: "nic-add", kind: "update", steps: []string{"begun", "applied", "committed"}, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"config", "device", "add", "r", dev("a", n), "nic", "network=hp"}
			},
			state: func(e *env, n int) bool { return plugged(e, dev("a", n)) },
		},
		{
			name: "nic-remove", kind: "update", steps: []string{"begun", "applied", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { e.ok("config", "device", "add", "r", dev("x", n), "nic", "network=hp") },
			cmd:   func(n int) []string { return []string{"config", "device", "remove", "r", dev("x", n)} },
			state: func(e *env, n int) bool { return !plugged(e, dev("x", n)) },
		},
		{
			name: "nic-set", kind: "update", steps: []string{"begun", "applied", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { e.ok("config", "device", "add", "r", dev("y", n), "nic", "network=hp") },
			cmd: func(n int) []string {
				return []string{"config", "device", "set", "r", dev("y", n), fmt.Sprintf("ipv4.address=10.99.50.%d", 100+n)}
			},
			state: func(e *env, n int) bool {
				plugged(e, dev("y", n))
				return e.nic("r", dev("y", n)).v4 == fmt.Sprintf("10.99.50.%d", 100+n)
			},
		},
		{
			name: "proxy-add", kind: "update", steps: []string{"begun", "applied", "committed"}, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"config", "device", "add", "r", dev("p", n), "proxy", fmt.Sprintf("listen=tcp:127.0.0.1:%d", 9000+n), "connect=tcp:127.0.0.1:80"}
			},
			state: func(e *env, n int) bool { return hasDevice(e, dev("p", n)) },
		},
		{
			name: "profile-nic", kind: "update-profile", steps: []string{"begun", "applied", "committed"}, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"profile", "device", "add", "default", dev("q", n), "nic", "network=hp"}
			},
			state: func(e *env, n int) bool { return plugged(e, dev("q", n)) },
		},
		{
			kind: "start", steps: []string{"bundled", "spawned"}, done: []string{"spawned"},
			setup: func(e *env, n int) { e.ok("create", "bb", dev("s", n)) },
			cmd:   func(n int) []string { return []string{"start", dev("s", n)} },
			state: func(e *env, n int) bool { return e.status(dev("s", n)).State == "running" },
		},
	}
	runCrashes(t, e, cases, (*env).hostMatchesRecords)
}
