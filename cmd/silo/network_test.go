package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
)

// udhcpcScript applies a lease as busybox's own example script does: the
// old IPv4 addresses go at deconfig, the lease's come at bound. It also
// writes the lease to /lease.
const udhcpcScript = `#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface" ;;
bound|renew)
	ip addr add "$ip/$mask" dev "$interface"
	ip route replace default via "$router" dev "$interface"
	echo "$ip/$mask $router" >/lease ;;
esac
`

// On busybox, without a DHCP client and with one: the address silo
// recorded is there, with the default route, when init starts; udhcpc
// gets that same address from dnsmasq; the instances reach each other by
// NAME and NAME.silo; the host reaches them over TCP, on both families,
// and they the host; router advertisements give them a default IPv6
// route, and SLAAC the address silo recorded.
func TestNetBusybox(t *testing.T) {
	e := bootEnv(t, "dir")
	// a's init is a script that records the network as init finds it.
	e.ok("create", "bb", "a", "-c", "init=/sbin/netboot")
	e.push("a", "/sbin/netboot", "0755", []byte("#!/bin/sh\n{ ip -4 addr show dev eth0; ip route; } >/netboot 2>&1\nexec /sbin/init\n"))
	// b asks for its address by DHCP, as an image with a client does.
	e.ok("create", "bb", "b")
	e.push("b", "/etc/inittab", "0644", []byte("::sysinit:/etc/init.d/rcS\n::sysinit:/sbin/udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 10 -T 1\n::respawn:/bin/cttyhack /bin/sh -l\n"))
	e.push("b", "/etc/udhcpc.script", "0755", []byte(udhcpcScript))
	a, b := e.nic("a", "eth0"), e.nic("b", "eth0")
	gw4, gw6 := e.gateway("silobr0")
	if a.v4 == "" || a.v6 == "" || b.v4 == "" || a.v4 == b.v4 || !gw4.Contains(netip.MustParseAddr(a.v4)) {
		t.Fatalf("recorded before the first start: a %+v, b %+v, on %s", a, b, gw4)
	}
	e.ok("start", "a", "--wait")
	e.ok("start", "b", "--wait")

	boot := e.sh("a", "cat /netboot")
	if !strings.Contains(boot, "inet "+a.v4+"/24 ") || !strings.Contains(boot, "default via "+gw4.Addr().String()+" dev eth0") {
		t.Fatalf("what init found, with %s recorded:\n%s", a.v4, boot)
	}
	var lease string
	eventually(t, "udhcpc in b has a lease", func() bool {
		lease = e.sh("b", "cat /lease 2>/dev/null || true")
		return lease != ""
	})
	if want := b.v4 + "/24 " + gw4.Addr().String() + "\n"; lease != want {
		t.Fatalf("udhcpc's lease %q, want %q, the address silo recorded", lease, want)
	}
	if got := e.inetAddrs("b", "-4", "eth0"); !slices.Equal(got, []string{b.v4 + "/24"}) {
		t.Fatalf("b's IPv4 after DHCP: %v, want %s", got, b.v4)
	}

	// By name, both ways, from one's DNS to the other's httpd.
	e.serveHTTP("a")
	e.serveHTTP("b")
	for _, c := range []struct{ from, to string }{{"a", "b"}, {"a", "b.silo"}, {"b", "a"}, {"b", "a.silo"}} {
		want := page(strings.TrimSuffix(c.to, ".silo"))
		if got := e.fetch(c.from, c.to, "80"); got != want {
			t.Errorf("from %s, http://%s/ gives %q, want %q", c.from, c.to, got, want)
		}
	}

	// The host to the instances, and back.
	mustGet(t, e.netns, a.v4+":80", page("a"))
	mustGet(t, e.netns, "["+a.v6+"]:80", page("a"))
	mustGet(t, e.netns, b.v4+":80", page("b"))
	l := listenIn(t, e.netns, gw4.Addr().String()+":9000")
	got := hear(l)
	e.sh("a", "echo from a | nc -w 3 "+gw4.Addr().String()+" 9000")
	if h := expectHeard(t, got, "from a\n"); h.peer.String() != a.v4 {
		t.Errorf("the host saw a's connection come from %s, want %s", h.peer, a.v4)
	}
	l6 := listenIn(t, e.netns, "["+gw6.Addr().String()+"]:9000")
	got6 := hear(l6)
	e.sh("b", "echo from b | nc -w 3 "+gw6.Addr().String()+" 9000")
	if h := expectHeard(t, got6, "from b\n"); h.peer.String() != b.v6 {
		t.Errorf("the host saw b's IPv6 connection come from %s, want %s", h.peer, b.v6)
	}

	// Router advertisements.
	for _, name := range []string{"a", "b"} {
		eventually(t, name+" has a default IPv6 route from a router advertisement", func() bool {
			return e.hasRARoute(name)
		})
		if got, want := e.inetAddrs(name, "-6", "eth0"), e.nic(name, "eth0").v6+"/64"; !slices.Equal(got, []string{want}) {
			t.Errorf("%s's global IPv6 addresses after router advertisements: %v, want just %s", name, got, want)
		}
	}
	e.hostMatchesRecords()
	e.consistent()
}

// NAT: what leaves for the outside comes from the host's address on the
// way out, for both families; with ipv4.nat=false it keeps the instance's
// own. A macvlan nic puts the instance on the outside's link itself,
// with no address from silo.
func TestNetNATAndMacvlan(t *testing.T) {
	e := bootEnv(t, "dir")
	out := e.outside()
	e.launch("bb", "a")
	a := e.nic("a", "eth0")
	got := hear(listenIn(t, out, "192.0.2.2:9000"))
	got6 := hear(listenIn(t, out, "[2001:db8::2]:9000"))
	e.sh("a", "echo v4 | nc -w 3 192.0.2.2 9000")
	if h := expectHeard(t, got, "v4\n"); h.peer.String() != "192.0.2.1" {
		t.Errorf("the outside saw %s, want the host's 192.0.2.1", h.peer)
	}
	e.sh("a", "echo v6 | nc -w 3 2001:db8::2 9000")
	if h := expectHeard(t, got6, "v6\n"); h.peer.String() != "2001:db8::1" {
		t.Errorf("the outside saw %s, want the host's 2001:db8::1", h.peer)
	}

	// Without NAT the instance's own address goes out, which the outside
	// answers once it has a route back.
	gw4, _ := e.gateway("silobr0")
	ip(t, out, "route", "add", gw4.Masked().String(), "via", "192.0.2.1")
	e.ok("network", "set", "silobr0", "ipv4.nat=false")
	e.sh("a", "echo plain | nc -w 3 192.0.2.2 9000")
	if h := expectHeard(t, got, "plain\n"); h.peer.String() != a.v4 {
		t.Errorf("with ipv4.nat=false the outside saw %s, want %s", h.peer, a.v4)
	}
	e.ok("network", "set", "silobr0", "ipv4.nat=true")
	e.sh("a", "echo nat | nc -w 3 192.0.2.2 9000")
	if h := expectHeard(t, got, "nat\n"); h.peer.String() != "192.0.2.1" {
		t.Errorf("with ipv4.nat=true again the outside saw %s", h.peer)
	}

	// macvlan on the host's link to the outside, plugged live.
	e.ok("config", "device", "add", "a", "lan", "nic", "nictype=macvlan", "parent=sx-up")
	lan := e.nic("a", "lan")
	if lan.v4 != "" || lan.v6 != "" || lan.host != "" || lan.mac == "" {
		t.Fatalf("a macvlan nic's record: %+v", lan)
	}
	if link := e.sh("a", "ip link show dev lan"); !strings.Contains(link, "link/ether "+lan.mac) {
		t.Fatalf("lan inside a, with MAC %s recorded:\n%s", lan.mac, link)
	}
	if addrs := e.inetAddrs("a", "-4", "lan"); len(addrs) != 0 {
		t.Fatalf("silo gave the macvlan nic addresses %v", addrs)
	}
	e.sh("a", "ip addr add 192.0.2.50/24 dev lan && echo lan | nc -w 3 192.0.2.2 9000")
	if h := expectHeard(t, got, "lan\n"); h.peer.String() != "192.0.2.50" {
		t.Errorf("the outside saw the macvlan's connection from %s, want 192.0.2.50", h.peer)
	}
	// It is there again at the next boot, and goes when removed.
	e.ok("restart", "a", "--force", "--wait")
	if link := e.sh("a", "ip link show dev lan"); !strings.Contains(link, "link/ether "+lan.mac) {
		t.Fatalf("lan after a restart:\n%s", link)
	}
	e.ok("config", "device", "remove", "a", "lan")
	e.noInterface("a", "lan")
	e.hostMatchesRecords()
	e.consistent()
}

// Port forwards in both modes: a userspace forwarder (TCP to the
// instance's loopback, and UDP), and the kernel's DNAT (nat=true); each
// from the host's loopback and bridge address, from the outside, and
// from the instance itself. A listen port that is taken is one line, exit
// 5, and leaves neither a forwarder nor a record, live or at start.
func TestNetForwards(t *testing.T) {
	e := bootEnv(t, "dir")
	out := e.outside()
	e.launch("bb", "a")
	a := e.nic("a", "eth0")
	gw4, _ := e.gateway("silobr0")
	gw := gw4.Addr().String()
	e.serveHTTP("a")
	e.push("a", "/udpecho", "0755", testProgram(t, "udpecho"))
	e.sh("a", "/udpecho 127.0.0.1:7000 </dev/null >/dev/null 2>&1 &")

	e.ok("config", "device", "add", "a", "web", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80")
	e.ok("config", "device", "add", "a", "webnat", "proxy", "listen=tcp:0.0.0.0:8081", "connect=tcp:"+a.v4+":80", "nat=true")
	e.ok("config", "device", "add", "a", "echo", "proxy", "listen=udp:0.0.0.0:5300", "connect=udp:127.0.0.1:7000")
	for _, host := range []string{"127.0.0.1", gw} {
		mustGet(t, e.netns, host+":8080", page("a"))
		mustGet(t, e.netns, host+":8081", page("a"))
		udpEcho(t, e.netns, host+":5300", "echo via "+host)
	}
	mustGet(t, out, "192.0.2.1:8080", page("a"))
	mustGet(t, out, "192.0.2.1:8081", page("a"))
	udpEcho(t, out, "192.0.2.1:5300", "echo from outside")
	for _, port := range []string{"8080", "8081"} {
		if got := e.fetch("a", gw, port); got != page("a") {
			t.Errorf("a through its own forward on port %s: %q", port, got)
		}
	}

	// A port that is taken.
	listenIn(t, e.netns, "0.0.0.0:8090")
	before := e.proxies()
	e.fails(5, "already in use", "config", "device", "add", "a", "busy", "proxy", "listen=tcp:0.0.0.0:8090", "connect=tcp:127.0.0.1:80")
	if _, ok := e.instanceOf("a").Devices["busy"]; ok {
		t.Fatal("the refused proxy is recorded")
	}
	if got := e.proxies(); !slices.Equal(got, before) {
		t.Fatalf("forwarders after the refused one: %v, before %v", got, before)
	}
	e.ok("create", "bb", "c")
	e.ok("config", "device", "add", "c", "busy", "proxy", "listen=tcp:0.0.0.0:8090", "connect=tcp:127.0.0.1:80")
	e.fails(5, "already in use", "start", "c")
	if st := e.status("c"); st.State != "stopped" {
		t.Fatalf("c after a refused start: %+v", st)
	}
	e.hostMatchesRecords()

	// Removed, they forward no more.
	e.ok("config", "device", "remove", "a", "web", "webnat", "echo")
	refused(t, e.netns, gw+":8080")
	refused(t, e.netns, "127.0.0.1:8081")
	e.hostMatchesRecords()
	e.consistent()
}

// A nic added to a running instance is there at once with its address,
// and goes with its host-side veth when removed; a change to a profile
// reaches the running instances that apply it.
func TestNetHotplug(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a")
	e.ok("network", "create", "net2")
	gw2, _ := e.gateway("net2")
	e.ok("config", "device", "add", "a", "eth1", "nic", "network=net2")
	eth1 := e.nic("a", "eth1")
	if got := e.inetAddrs("a", "-4", "eth1"); !slices.Equal(got, []string{eth1.v4 + "/24"}) {
		t.Fatalf("eth1 inside right after the add: %v, want %s", got, eth1.v4)
	}
	if link := ip(t, e.netns, "link", "show", "dev", eth1.host); !strings.Contains(link, "master net2") {
		t.Fatalf("eth1's host side:\n%s", link)
	}
	e.sh("a", "ping -c 1 -W 2 "+gw2.Addr().String())
	e.ok("config", "device", "remove", "a", "eth1")
	e.noInterface("a", "eth1")
	if slices.Contains(links(t, e.netns, "veth"), eth1.host) {
		t.Fatalf("eth1's host side %s outlived it", eth1.host)
	}

	// Through a profile: a forward and a nic, added and removed live.
	e.serveHTTP("a")
	e.ok("profile", "create", "fw")
	e.ok("profile", "assign", "a", "default,fw")
	e.ok("profile", "device", "add", "fw", "web", "proxy", "listen=tcp:0.0.0.0:8082", "connect=tcp:127.0.0.1:80")
	mustGet(t, e.netns, "127.0.0.1:8082", page("a"))
	e.ok("profile", "device", "add", "fw", "eth2", "nic", "network=net2")
	eth2 := e.nic("a", "eth2")
	if got := e.inetAddrs("a", "-4", "eth2"); !slices.Equal(got, []string{eth2.v4 + "/24"}) {
		t.Fatalf("eth2 from the profile: %v, want %s", got, eth2.v4)
	}
	e.hostMatchesRecords()
	e.ok("profile", "device", "remove", "fw", "web", "eth2")
	refused(t, e.netns, "127.0.0.1:8082")
	e.noInterface("a", "eth2")
	e.hostMatchesRecords()
	e.consistent()
}

// With its instances stopped, a network loses its bridge, its nftables
// table and its dnsmasq behind silo's back: the next start brings all of
// them back, names resolve again, and another start changes nothing.
func TestNetRecovery(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "r1")
	e.launch("bb", "r2")
	r1, r2 := e.nic("r1", "eth0"), e.nic("r2", "eth0")
	e.ok("stop", "r1", "--force")
	e.ok("stop", "r2", "--force")
	pids := e.dnsmasqPids()["silobr0"]
	if len(pids) != 1 {
		t.Fatalf("dnsmasq of silobr0: %v", pids)
	}
	ip(t, e.netns, "link", "del", "silobr0")
	e.inEnvNS("nft", "delete", "table", "inet", "silo_silobr0")
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the killed dnsmasq is gone", func() bool { return len(e.dnsmasqPids()["silobr0"]) == 0 })
	if tables := e.nftTables(); slices.Contains(tables, "inet silo_silobr0") {
		t.Fatalf("tables %v", tables)
	}
	var n api.Network
	e.json(&n, "network", "info", "silobr0")
	if n.Status != "Unavailable" {
		t.Fatalf("network info with the bridge gone: %s", n.Status)
	}

	e.ok("start", "r1", "--wait")
	e.hostMatchesRecords()
	if links := links(t, e.netns, "bridge"); !slices.Equal(links, []string{"silobr0"}) {
		t.Fatalf("bridges after the start: %v", links)
	}
	gw4, _ := e.gateway("silobr0")
	for name, want := range map[string]string{"r1.silo.": r1.v4, "r2.silo.": r2.v4} {
		if got, err := lookupIn(e.netns, gw4.Addr().String()+":53", name); err != nil || !slices.Equal(got, []string{want}) {
			t.Fatalf("dnsmasq answers %s with %v, %v; want %s", name, got, err, want)
		}
	}
	if got := e.sh("r1", "nslookup r2.silo"); !strings.Contains(got, r2.v4) {
		t.Fatalf("r1 resolves r2.silo as:\n%s", got)
	}
	e.sh("r1", "ping -c 1 -W 2 "+gw4.Addr().String())

	// Another start, and a restart, change nothing: the same dnsmasq,
	// the same rules (nft numbers each rule anew when it is rebuilt).
	dnsmasq := e.dnsmasqPids()["silobr0"]
	rules := e.inEnvNS("nft", "-a", "list", "table", "inet", "silo_silobr0")
	e.ok("start", "r2", "--wait")
	e.ok("restart", "r1", "--force", "--wait")
	if got := e.dnsmasqPids()["silobr0"]; !slices.Equal(got, dnsmasq) {
		t.Fatalf("dnsmasq %v after more starts, was %v", got, dnsmasq)
	}
	if got := e.inEnvNS("nft", "-a", "list", "table", "inet", "silo_silobr0"); got != rules {
		t.Fatalf("the rules changed on a start that changed nothing:\n%s\nwere:\n%s", got, rules)
	}
	e.hostMatchesRecords()
	e.consistent()
}

// 50 instances on one network, started a few at once: each has its own
// address, answers the host at it, and resolves by name.
func TestNetFifty(t *testing.T) {
	const n = 50
	e := bootEnv(t, "dir")
	parallel(t, n, 4, func(i int) error {
		if r := e.run("create", "bb", fmt.Sprintf("m%d", i)); r.code != 0 {
			return fmt.Errorf("create m%d: %s", i, r.err)
		}
		return nil
	})
	parallel(t, n, 6, func(i int) error {
		if r := e.run("start", fmt.Sprintf("m%d", i), "--wait"); r.code != 0 {
			return fmt.Errorf("start m%d: %s", i, r.err)
		}
		return nil
	})
	addrs := map[string]string{}
	for _, i := range e.instances() {
		if i.StatusCode != api.Running {
			t.Fatalf("%s is %s", i.Name, i.Status)
		}
		for _, a := range i.State.Network["eth0"].Addresses {
			if a.Family == "inet" {
				if other, ok := addrs[a.Address]; ok {
					t.Fatalf("%s and %s both have %s", other, i.Name, a.Address)
				}
				addrs[a.Address] = i.Name
			}
		}
	}
	if len(addrs) != n {
		t.Fatalf("%d addresses for %d instances", len(addrs), n)
	}
	// A connection refused is the instance's own kernel answering.
	gw4, _ := e.gateway("silobr0")
	err := inNS(e.netns, func() error {
		for a, name := range addrs {
			c, err := net.DialTimeout("tcp", a+":1", 3*time.Second)
			if err == nil {
				c.Close()
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("%s at %s does not answer: %w", name, a, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for a, name := range addrs {
		if got, err := lookupIn(e.netns, gw4.Addr().String()+":53", name+".silo."); err != nil || !slices.Equal(got, []string{a}) {
			t.Fatalf("%s.silo resolves to %v, %v; want %s", name, got, err, a)
		}
	}
	e.hostMatchesRecords()
}

// The network commands: create, list, info, set, unset, delete; bad input
// is one line with its exit code, and leaves no bridge, rule, veth or
// dnsmasq behind; delete takes every trace.
func TestNetCommands(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("network", "create", "lab", "ipv4.address=10.99.7.1/24", "ipv6.address=fd42:99:7::1/64", "dns.domain=lab")
	var nets []api.Network
	e.apiJSON(&nets, "network", "list")
	if len(nets) != 1 || nets[0].Name != "lab" || nets[0].Status != "Created" || nets[0].Config["ipv4.nat"] != "true" {
		t.Fatalf("network list: %+v", nets)
	}
	if out := e.ok("network", "list"); !strings.Contains(out, "lab") {
		t.Fatalf("network list:\n%s", out)
	}
	e.hostMatchesRecords()
	nat := func() bool {
		return strings.Contains(e.inEnvNS("nft", "list", "table", "inet", "silo_lab"), "masquerade")
	}
	if !nat() {
		t.Fatal("no masquerade with ipv4.nat=true")
	}
	e.ok("network", "set", "lab", "ipv4.nat=false", "ipv6.nat=false")
	if nat() {
		t.Fatal("masquerade with NAT off")
	}
	e.ok("network", "unset", "lab", "ipv6.nat")
	e.ok("network", "set", "lab", "ipv4.nat=true")
	if !nat() {
		t.Fatal("no masquerade once ipv4.nat=true again")
	}

	e.ok("create", "bb", "x", "--network", "lab")
	e.ok("create", "bb", "y", "--network", "lab")
	e.ok("start", "x", "--wait")
	x, y := e.nic("x", "eth0"), e.nic("y", "eth0")
	if got, err := lookupIn(e.netns, "10.99.7.1:53", "x.lab."); err != nil || !slices.Equal(got, []string{x.v4}) {
		t.Fatalf("x.lab resolves to %v, %v; want %s", got, err, x.v4)
	}
	var info struct {
		Leases []api.NetworkLease `json:"leases"`
	}
	e.json(&info, "network", "info", "lab")
	var leased []string
	for _, l := range info.Leases {
		leased = append(leased, l.Hostname+" "+l.Hwaddr+" "+l.Address)
	}
	slices.Sort(leased)
	want := []string{"x " + x.mac + " " + x.v4, "x " + x.mac + " " + x.v6, "y " + y.mac + " " + y.v4, "y " + y.mac + " " + y.v6}
	slices.Sort(want)
	if !slices.Equal(leased, want) {
		t.Fatalf("network info's leases %v, want %v", leased, want)
	}

	// Bad input, each refused whole.
	ip(t, e.netns, "route", "add", "blackhole", "10.123.0.0/16")
	xAddrs := e.inetAddrs("x", "-4", "eth0")
	xLinks := e.sh("x", "ip -o link | cut -d: -f2")
	for _, c := range []struct {
		code int
		msg  string
		args []string
	}{
		{2, "overlaps the host's route 10.123.0.0/16", []string{"network", "create", "o1", "ipv4.address=10.123.4.1/24"}},
		{2, "overlaps network lab", []string{"network", "create", "o2", "ipv4.address=10.99.7.129/25"}},
		{2, `unknown network config key "colour"`, []string{"network", "create", "o3", "colour=red"}},
		{2, "neither true nor false", []string{"network", "create", "o4", "ipv4.nat=maybe"}},
		{2, "not auto, none, or an address", []string{"network", "create", "o5", "ipv4.address=fd00::1/64"}},
		{4, "already", []string{"network", "create", "lab"}},
		{2, `unknown network config key "colour"`, []string{"network", "set", "lab", "colour=red"}},
		{5, "cannot change while", []string{"network", "set", "lab", "ipv4.address=10.99.9.1/24"}},
		{3, `network "nope" not found`, []string{"network", "set", "nope", "ipv4.nat=false"}},
		{3, `network "nope" not found`, []string{"network", "info", "nope"}},
		{3, `network "nope" not found`, []string{"network", "delete", "nope"}},
		{5, "in use by instance x", []string{"network", "delete", "lab"}},
		{4, y.v4 + " is taken by instance y", []string{"config", "device", "set", "x", "eth0", "ipv4.address=" + y.v4}},
		{2, "not a free host address", []string{"config", "device", "set", "x", "eth0", "ipv4.address=10.99.8.9"}},
		{3, "no interface nosuch0", []string{"config", "device", "add", "x", "mv", "nic", "nictype=macvlan", "parent=nosuch0"}},
		{2, `unknown type "floppy"`, []string{"config", "device", "add", "x", "f", "floppy"}},
		{2, `unknown key "colour"`, []string{"config", "device", "add", "x", "eth1", "nic", "network=lab", "colour=red"}},
		{3, `network "nope" not found`, []string{"config", "device", "add", "x", "eth1", "nic", "network=nope"}},
	} {
		e.fails(c.code, c.msg, c.args...)
	}
	e.hostMatchesRecords()
	if got := e.nic("x", "eth0"); got != x {
		t.Fatalf("x's nic after refused changes: %+v, was %+v", got, x)
	}
	if got := e.inetAddrs("x", "-4", "eth0"); !slices.Equal(got, xAddrs) {
		t.Fatalf("x's addresses after refused changes: %v, were %v", got, xAddrs)
	}
	if got := e.sh("x", "ip -o link | cut -d: -f2"); got != xLinks {
		t.Fatalf("x's interfaces after refused changes:\n%s\nwere:\n%s", got, xLinks)
	}
	if dev := e.instanceOf("x").Devices; len(dev) != 1 || dev["eth0"]["network"] != "lab" {
		t.Fatalf("x's own devices after refused changes: %v", dev)
	}

	// Delete takes every trace.
	e.ok("delete", "--force", "x")
	e.ok("delete", "y")
	e.ok("network", "delete", "lab")
	e.apiJSON(&nets, "network", "list")
	if len(nets) != 0 {
		t.Fatalf("networks after the delete: %+v", nets)
	}
	if b := links(t, e.netns, "bridge"); len(b) != 0 {
		t.Fatalf("bridges after the delete: %v", b)
	}
	if tb := e.nftTables(); len(tb) != 0 {
		t.Fatalf("nftables tables after the delete: %v", tb)
	}
	if d := e.dnsmasqPids(); len(d) != 0 {
		t.Fatalf("dnsmasq after the delete: %v", d)
	}
	if _, err := os.Stat(e.networkDir("lab")); !os.IsNotExist(err) {
		t.Fatalf("the network's directory after the delete: %v", err)
	}
	e.hostMatchesRecords()
	e.consistent()
}

// security.ipv4_filtering and security.mac_filtering: an instance that
// takes another's address, or another MAC, reaches neither the host nor
// the other instance; one without the filters that does the same still
// gets through, so it is the filters that stop it.
func TestNetFiltering(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("network", "create", "lab", "ipv4.address=10.99.8.1/24", "ipv6.address=none")
	for _, name := range []string{"f1", "f2", "f3"} {
		e.ok("create", "bb", name, "--network", "lab")
	}
	e.ok("config", "device", "set", "f1", "eth0", "security.ipv4_filtering=true", "security.mac_filtering=true")
	for _, name := range []string{"f1", "f2", "f3"} {
		e.ok("start", name, "--wait")
	}
	f1, f2 := e.nic("f1", "eth0"), e.nic("f2", "eth0")
	e.serveHTTP("f2")
	got := hear(listenIn(t, e.netns, "10.99.8.1:9100"))
	// reach says whether instance name gets a message to the host and a
	// page from f2, with the address it has now.
	reach := func(name, msg string) bool {
		t.Helper()
		r := e.run("exec", name, "--", "sh", "-c", "echo "+msg+" | nc -w 1 10.99.8.1 9100")
		if r.code != 0 {
			expectNothing(t, got)
			if web := e.run("exec", name, "--", "sh", "-c", "echo | nc -w 1 "+f2.v4+" 80"); web.code == 0 {
				t.Fatalf("%s cannot reach the host but gets f2's page", name)
			}
			return false
		}
		expectHeard(t, got, msg+"\n")
		return true
	}
	// address moves the address of instance name's eth0 to addr, and the
	// default route with it.
	address := func(name, addr string) {
		e.sh(name, "ip addr flush dev eth0 && ip addr add "+addr+"/24 dev eth0 && ip route replace default via 10.99.8.1")
	}
	mac := func(name, mac string) {
		e.sh(name, "ip link set eth0 down && ip link set eth0 address "+mac+" && ip link set eth0 up && ip route replace default via 10.99.8.1")
	}
	if !reach("f1", "f1 as itself") {
		t.Fatal("f1 cannot reach the host with its own address")
	}
	address("f1", f2.v4)
	if reach("f1", "f1 as f2") {
		t.Fatal("f1, filtered, reached the host with f2's address")
	}
	address("f1", "10.99.8.200")
	if reach("f1", "f1 as a stranger") {
		t.Fatal("f1, filtered, reached the host with an address of no one")
	}
	address("f3", "10.99.8.201")
	if !reach("f3", "f3 as a stranger") {
		t.Fatal("f3, not filtered, cannot reach the host with another free address: the test proves nothing")
	}
	address("f1", f1.v4)
	if !reach("f1", "f1 as itself again") {
		t.Fatal("f1 cannot reach the host with its own address again")
	}
	mac("f1", "00:16:3e:00:00:01")
	if reach("f1", "f1 with another MAC") {
		t.Fatal("f1, filtered, reached the host with another MAC")
	}
	mac("f3", "00:16:3e:00:00:03")
	if !reach("f3", "f3 with another MAC") {
		t.Fatal("f3, not filtered, cannot reach the host with another MAC: the test proves nothing")
	}
	e.hostMatchesRecords()
}
