package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

func TestEnsureCreates(t *testing.T) {
	n := testNet(t, "silotc0", 1)
	n.Hosts = []Host{{Name: "web", MAC: RandomMAC(), IPv4: addr4(n, 10), IPv6: addr6(n, 10)}}
	mustEnsure(t, n)

	br := link(t, n.Bridge)
	if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s: type %s, flags %v: want an up bridge", n.Bridge, br.Type(), br.Attrs().Flags)
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Prefix
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_LINK {
			got = append(got, prefixOf(a.IPNet))
		}
	}
	if !slices.Contains(got, n.IPv4) || !slices.Contains(got, n.IPv6) || len(got) != 2 {
		t.Errorf("bridge addresses %v, want %s and %s", got, n.IPv4, n.IPv6)
	}
	if !hasTable(t, n.Bridge, nftables.TableFamilyINet) {
		t.Error("no inet table")
	}
	if hasTable(t, n.Bridge, nftables.TableFamilyBridge) {
		t.Error("a bridge table without filters")
	}
	pid := dnsmasqPid(n)
	if pid == 0 {
		t.Fatal("no dnsmasq running")
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Error("IPv4 forwarding is off")
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); strings.TrimSpace(string(b)) != "1" {
		t.Error("IPv6 forwarding is off")
	}
	// dnsmasq has dropped root.
	st, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	if st.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Error("dnsmasq runs as root")
	}
}

func TestEnsureTwiceChangesNothing(t *testing.T) {
	n := withEverything(testNet(t, "silotc1", 2))
	mustEnsure(t, n)

	type state struct {
		link    int
		handles []uint64
		pid     int
		mtimes  map[string]time.Time
	}
	snapshot := func() state {
		s := state{link: link(t, n.Bridge).Attrs().Index, handles: ruleHandles(t, n.Bridge), pid: dnsmasqPid(n), mtimes: map[string]time.Time{}}
		entries, err := os.ReadDir(n.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			s.mtimes[e.Name()] = fi.ModTime()
		}
		return s
	}
	before := snapshot()
	if len(before.handles) == 0 || before.pid == 0 {
		t.Fatalf("after the first Ensure: %d rules, dnsmasq %d", len(before.handles), before.pid)
	}
	mustEnsure(t, n)
	after := snapshot()
	if before.link != after.link || !slices.Equal(before.handles, after.handles) || before.pid != after.pid {
		t.Errorf("the second Ensure changed the host: before %+v, after %+v", before, after)
	}
	for name, m := range before.mtimes {
		if !after.mtimes[name].Equal(m) {
			t.Errorf("the second Ensure rewrote %s", name)
		}
	}
}

// withEverything gives n a host, a filtered nic and a forward.
func withEverything(n Net) Net {
	n.Hosts = []Host{{Name: "web", MAC: RandomMAC(), IPv4: addr4(n, 10)}}
	n.Filters = []Filter{{HostName: "vweb", MAC: n.Hosts[0].MAC, IPv4: addr4(n, 10), MACFiltering: true, IPv4Filtering: true}}
	n.Forwards = []Forward{{Proto: "tcp", Listen: netip.MustParseAddrPort("0.0.0.0:8080"), Target: netip.AddrPortFrom(addr4(n, 10), 80)}}
	return n
}

func TestEnsureUpdates(t *testing.T) {
	n := testNet(t, "silotc2", 3)
	n.Hosts = []Host{{Name: "web", MAC: RandomMAC(), IPv4: addr4(n, 10)}}
	mustEnsure(t, n)
	pid, handles := dnsmasqPid(n), ruleHandles(t, n.Bridge)

	// A new host: dnsmasq reloads, and keeps running.
	n.Hosts = append(n.Hosts, Host{Name: "db", MAC: RandomMAC(), IPv4: addr4(n, 11)})
	mustEnsure(t, n)
	if got := dnsmasqPid(n); got != pid {
		t.Errorf("dnsmasq %d replaced by %d for a new host", pid, got)
	}
	if !slices.Equal(handles, ruleHandles(t, n.Bridge)) {
		t.Error("a new host rebuilt the rules")
	}
	// SIGHUP is asynchronous: give dnsmasq a moment to read its files again.
	var addrs []string
	var err error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if addrs, err = lookup(n, "db.silo."); err == nil {
			break
		}
	}
	if !slices.Equal(addrs, []string{addr4(n, 11).String()}) {
		t.Errorf("db.silo: %v, %v", addrs, err)
	}

	// A new domain: dnsmasq restarts with it.
	n.Domain = "lab"
	mustEnsure(t, n)
	if got := dnsmasqPid(n); got == pid || got == 0 {
		t.Errorf("dnsmasq %d, then %d: want a new one for a new domain", pid, got)
	}
	if addrs, err := lookup(n, "web.lab."); err != nil || !slices.Equal(addrs, []string{addr4(n, 10).String()}) {
		t.Errorf("web.lab: %v, %v", addrs, err)
	}

	// No more NAT: the rules change, dnsmasq stays.
	pid = dnsmasqPid(n)
	n.IPv4NAT = false
	mustEnsure(t, n)
	if slices.Equal(handles, ruleHandles(t, n.Bridge)) {
		t.Error("turning NAT off left the rules as they were")
	}
	if got := dnsmasqPid(n); got != pid {
		t.Errorf("dnsmasq %d replaced by %d for a change of the rules", pid, got)
	}

	// No addresses: none on the bridge, and no dnsmasq.
	n.IPv4, n.IPv6, n.Hosts = netip.Prefix{}, netip.Prefix{}, nil
	mustEnsure(t, n)
	if pid := dnsmasqPid(n); pid != 0 {
		t.Errorf("dnsmasq %d runs for a network without addresses", pid)
	}
	left, err := netlink.AddrList(link(t, n.Bridge), netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range left {
		if a.Scope != unix.RT_SCOPE_LINK {
			t.Errorf("address %s left on the bridge", a.IPNet)
		}
	}
}

func TestEnsureRecovers(t *testing.T) {
	n := testNet(t, "silotc3", 4)
	n.Hosts = []Host{{Name: "web", MAC: RandomMAC(), IPv4: addr4(n, 10)}}
	mustEnsure(t, n)

	// Behind silo's back: dnsmasq killed, bridge and table deleted, as after a reboot.
	old := dnsmasqPid(n)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); dnsmasqPid(n) != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := netlink.LinkDel(link(t, n.Bridge)); err != nil {
		t.Fatal(err)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: tableName(n.Bridge)})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	mustEnsure(t, n)
	if link(t, n.Bridge).Attrs().Flags&net.FlagUp == 0 {
		t.Error("bridge not up again")
	}
	if !hasTable(t, n.Bridge, nftables.TableFamilyINet) {
		t.Error("table not back")
	}
	if pid := dnsmasqPid(n); pid == 0 || pid == old {
		t.Errorf("dnsmasq %d after %d was killed", pid, old)
	}
	if addrs, err := lookup(n, "web.silo."); err != nil || !slices.Equal(addrs, []string{addr4(n, 10).String()}) {
		t.Errorf("web.silo: %v, %v", addrs, err)
	}
}

func TestEnsureUndoesOnFailure(t *testing.T) {
	n := testNet(t, "silotc7", 8)
	// dnsmasq, as nobody, could not read its files again: refused, and
	// the bridge and table that this Ensure made go with it.
	parent := filepath.Dir(n.Dir)
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(context.Background(), n); !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), parent) {
		t.Errorf("a directory nobody cannot reach: %v, want Invalid naming %s", err, parent)
	}
	if !linkGone(n.Bridge) || hasTable(t, n.Bridge, nftables.TableFamilyINet) || dnsmasqPid(n) != 0 {
		t.Errorf("a failed Ensure left: bridge %v, table %v, dnsmasq %d", !linkGone(n.Bridge), hasTable(t, n.Bridge, nftables.TableFamilyINet), dnsmasqPid(n))
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}

	// An interface of the bridge's name that is not a bridge is not taken over.
	other := spareLink(t, "silotc8")
	n.Bridge = other.Attrs().Name
	if err := Ensure(context.Background(), n); !errors.Is(err, errkind.AlreadyExists) {
		t.Errorf("a veth in the bridge's place: %v, want AlreadyExists", err)
	}
	if link(t, n.Bridge).Type() != "veth" {
		t.Error("the veth was replaced")
	}
}

func TestRemoveLeavesNoTrace(t *testing.T) {
	n := testNet(t, "silotc4", 5)
	n.Filters = []Filter{{HostName: "vx", IPv4Filtering: true}}
	n.Forwards = []Forward{{Proto: "udp", Listen: netip.MustParseAddrPort("0.0.0.0:5353"), Target: netip.AddrPortFrom(addr4(n, 10), 53)}}
	mustEnsure(t, n)
	pid := dnsmasqPid(n)
	if pid == 0 || !hasTable(t, n.Bridge, nftables.TableFamilyBridge) {
		t.Fatal("Ensure made no dnsmasq or no bridge table")
	}

	if err := Remove(context.Background(), n.Bridge, n.Dir); err != nil {
		t.Fatal(err)
	}
	if !linkGone(n.Bridge) {
		t.Error("bridge left")
	}
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
		if hasTable(t, n.Bridge, fam) {
			t.Errorf("table of family %d left", fam)
		}
	}
	if isDnsmasqOf(pid, n.Dir) {
		t.Errorf("dnsmasq %d left", pid)
	}
	if _, err := os.Stat(n.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left: %v", n.Dir, err)
	}
	if err := Remove(context.Background(), n.Bridge, n.Dir); err != nil {
		t.Errorf("Remove of a removed network: %v", err)
	}
}

func TestRemoveFindsDnsmasqWithoutPidFile(t *testing.T) {
	n := testNet(t, "silotc5", 6)
	mustEnsure(t, n)
	pid := dnsmasqPid(n)
	if err := os.Remove(filepath.Join(n.Dir, pidFile)); err != nil {
		t.Fatal(err)
	}
	if err := Remove(context.Background(), n.Bridge, n.Dir); err != nil {
		t.Fatal(err)
	}
	if isDnsmasqOf(pid, n.Dir) {
		t.Errorf("dnsmasq %d outlived the loss of its pid file", pid)
	}
}

func TestDNS(t *testing.T) {
	n := testNet(t, "silotc6", 7)
	n.Hosts = []Host{
		{Name: "web", MAC: RandomMAC(), IPv4: addr4(n, 10), IPv6: addr6(n, 10)},
		{Name: "db", MAC: RandomMAC(), IPv4: addr4(n, 11)},
	}
	mustEnsure(t, n)
	for name, want := range map[string][]string{
		"web.silo.": {addr4(n, 10).String(), addr6(n, 10).String()},
		"db.silo.":  {addr4(n, 11).String()},
		"db.":       {addr4(n, 11).String()},
	} {
		got, err := lookup(n, name)
		slices.Sort(got)
		slices.Sort(want)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	// The domain is dnsmasq's alone: a name it does not know is not asked upstream.
	var dnsErr *net.DNSError
	if got, err := lookup(n, "nope.silo."); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("nope.silo: %v, %v; want not found", got, err)
	}
}

func TestValidate(t *testing.T) {
	good := Net{Name: "n", Bridge: "silobr0", IPv4: netip.MustParsePrefix("10.1.2.1/24"), IPv6: netip.MustParsePrefix("fd00:1:2:3::1/64"), Domain: "silo", Dir: "/var/lib/silo/networks/n"}
	if err := good.validate(); err != nil {
		t.Fatalf("a good network: %v", err)
	}
	mac := RandomMAC()
	for name, change := range map[string]func(*Net){
		"long bridge":       func(n *Net) { n.Bridge = "abcdefghijklmnop" },
		"slash in bridge":   func(n *Net) { n.Bridge = "a/b" },
		"network address":   func(n *Net) { n.IPv4 = netip.MustParsePrefix("10.1.2.0/24") },
		"broadcast address": func(n *Net) { n.IPv4 = netip.MustParsePrefix("10.1.2.255/24") },
		"IPv6 not /64":      func(n *Net) { n.IPv6 = netip.MustParsePrefix("fd00:1:2:3::1/56") },
		"IPv6 in IPv4":      func(n *Net) { n.IPv4 = netip.MustParsePrefix("fd00::1/64") },
		"NAT without IPv6":  func(n *Net) { n.IPv6, n.IPv6NAT = netip.Prefix{}, true },
		"domain":            func(n *Net) { n.Domain = "a b" },
		"relative dir":      func(n *Net) { n.Dir = "networks/n" },
		"newline in dir":    func(n *Net) { n.Dir = "/x\nuser=root" },
		"newline in name":   func(n *Net) { n.Name = "n\nuser=root" },
		"host name":         func(n *Net) { n.Hosts = []Host{{Name: "a,b", MAC: mac}} },
		"host without MAC":  func(n *Net) { n.Hosts = []Host{{Name: "a"}} },
		"host elsewhere":    func(n *Net) { n.Hosts = []Host{{Name: "a", MAC: mac, IPv4: netip.MustParseAddr("10.9.9.9")}} },
		"host is gateway":   func(n *Net) { n.Hosts = []Host{{Name: "a", MAC: mac, IPv4: netip.MustParseAddr("10.1.2.1")}} },
		"MAC filter no MAC": func(n *Net) { n.Filters = []Filter{{HostName: "v", MACFiltering: true}} },
		"forward proto": func(n *Net) {
			n.Forwards = []Forward{{Proto: "sctp", Listen: netip.MustParseAddrPort("0.0.0.0:1"), Target: netip.MustParseAddrPort("10.1.2.5:1")}}
		},
		"forward families": func(n *Net) {
			n.Forwards = []Forward{{Proto: "tcp", Listen: netip.MustParseAddrPort("[::]:1"), Target: netip.MustParseAddrPort("10.1.2.5:1")}}
		},
		"forward elsewhere": func(n *Net) {
			n.Forwards = []Forward{{Proto: "tcp", Listen: netip.MustParseAddrPort("0.0.0.0:1"), Target: netip.MustParseAddrPort("10.9.2.5:1")}}
		},
		"forward no port": func(n *Net) {
			n.Forwards = []Forward{{Proto: "tcp", Listen: netip.MustParseAddrPort("0.0.0.0:0"), Target: netip.MustParseAddrPort("10.1.2.5:1")}}
		},
	} {
		n := good
		change(&n)
		if err := n.validate(); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
}

func TestLeases(t *testing.T) {
	dir := t.TempDir()
	if l, err := Leases(dir); err != nil || l != nil {
		t.Fatalf("no file: %v, %v", l, err)
	}
	content := `1767225600 00:16:3e:aa:bb:cc 10.1.2.5 web 01:00:16:3e:aa:bb:cc
0 00:16:3e:aa:bb:cd 10.1.2.6 * *
duid 00:01:00:01:2c:00:00:00:00:16:3e:aa:bb:cc
1767225600 2864434397 fd00::5 web 00:01:00:01
`
	if err := os.WriteFile(filepath.Join(dir, leasesFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	leases, err := Leases(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 2 {
		t.Fatalf("%d leases, want 2: %+v", len(leases), leases)
	}
	if l := leases[0]; l.MAC.String() != "00:16:3e:aa:bb:cc" || l.Addr != netip.MustParseAddr("10.1.2.5") || l.Hostname != "web" || l.Expiry.Unix() != 1767225600 {
		t.Errorf("first lease %+v", l)
	}
	if l := leases[1]; l.Hostname != "" || !l.Expiry.IsZero() {
		t.Errorf("second lease %+v: want no hostname, no expiry", l)
	}
}
