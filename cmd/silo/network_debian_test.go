package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// netbootUnit records the network as systemd finds it, before
// systemd-networkd starts. It takes the place of systemd-pstore.service,
// which the image's sysinit.target wants already and a container has no
// use for: file push makes files, not the symlink that enabling a unit
// of its own would take.
const netbootUnit = `[Unit]
Description=Record the network as silo left it
DefaultDependencies=no
Before=sysinit.target systemd-networkd.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c '/usr/local/bin/busybox ip -4 addr show dev eth0 >/run/netboot; /usr/local/bin/busybox ip route >>/run/netboot'
`

// Debian, whose systemd-networkd asks for its address by DHCP: the
// recorded address and route are there before networkd starts, and still
// the moment start --wait returns; networkd's lease is that same address,
// and router advertisements give the recorded IPv6 address. Two
// instances reach each other by name through Debian's own resolver; the
// host reaches them and they the host and, through NAT, the outside;
// forwards work in both modes; a nic plugged live has its address at once
// and networkd's DHCP keeps it.
func TestNetDebian(t *testing.T) {
	img := testImage(t, "debian-image.sh")
	e := newEnv(t, "btrfs")
	out := e.outside()
	e.ok("image", "import", img, "--alias", "debian")
	e.ok(append([]string{"create", "debian", "d1"}, e.poolArgs()...)...)
	// busybox gives the image ip, nc and httpd, which minbase lacks.
	e.push("d1", "/usr/local/bin/busybox", "0755", busyboxBinary(t))
	e.push("d1", "/etc/systemd/system/systemd-pstore.service", "0644", []byte(netbootUnit))
	e.ok("copy", "d1", "d2")
	d1, d2 := e.nic("d1", "eth0"), e.nic("d2", "eth0")
	gw4, _ := e.gateway("silobr0")
	gw := gw4.Addr().String()
	if d1.v4 == d2.v4 || d1.mac == d2.mac {
		t.Fatalf("the copy kept its source's address: %+v, %+v", d1, d2)
	}
	for _, name := range []string{"d1", "d2"} {
		e.ok("start", name, "--wait")
		// The address is the recorded one as soon as the start returns,
		// whatever networkd is doing.
		if got := e.sh(name, "/usr/local/bin/busybox ip -4 -o addr show dev eth0 scope global"); !strings.Contains(got, "inet "+e.nic(name, "eth0").v4+"/24 ") {
			t.Fatalf("%s's address when start returned:\n%s", name, got)
		}
		e.sh(name, "cd /usr/local/bin && for a in ip nc httpd; do ln -s busybox $a; done")
	}
	boot := e.sh("d1", "cat /run/netboot")
	if !strings.Contains(boot, "inet "+d1.v4+"/24 ") || !strings.Contains(boot, "default via "+gw+" dev eth0") {
		t.Fatalf("what d1 had before networkd started, with %s recorded:\n%s", d1.v4, boot)
	}

	// networkd's DHCP client takes the lease dnsmasq has for its MAC:
	// the address silo recorded, now with the lease's lifetime.
	for _, name := range []string{"d1", "d2"} {
		n := e.nic(name, "eth0")
		eventually(t, name+"'s address comes from DHCP", func() bool {
			return strings.Contains(e.sh(name, "ip -4 -o addr show dev eth0 scope global"), "dynamic")
		})
		if got := e.inetAddrs(name, "-4", "eth0"); !slices.Equal(got, []string{n.v4 + "/24"}) {
			t.Fatalf("%s's IPv4 after DHCP: %v, want %s", name, got, n.v4)
		}
		leases, err := os.ReadFile(filepath.Join(e.networkDir("silobr0"), "dnsmasq.leases"))
		if err != nil || !regexp.MustCompile(`(?m)^\d+ `+n.mac+` `+regexp.QuoteMeta(n.v4)+` `).Match(leases) {
			t.Fatalf("dnsmasq's leases (%v) lack %s %s:\n%s", err, n.mac, n.v4, leases)
		}
		eventually(t, name+" has a default IPv6 route from a router advertisement", func() bool {
			return e.hasRARoute(name)
		})
		eventually(t, name+"'s global IPv6 address is the recorded one", func() bool {
			return slices.Equal(e.inetAddrs(name, "-6", "eth0"), []string{n.v6 + "/64"})
		})
	}

	// By name, with glibc's resolver and bash's /dev/tcp.
	e.serveHTTP("d1")
	e.serveHTTP("d2")
	for _, c := range []struct{ from, to, want string }{{"d1", "d2", d2.v4}, {"d1", "d2.silo", d2.v4}, {"d2", "d1.silo", d1.v4}} {
		if got := e.sh(c.from, "getent ahostsv4 "+c.to+" | head -1"); !strings.HasPrefix(got, c.want+" ") {
			t.Errorf("from %s, %s is %q, want %s", c.from, c.to, got, c.want)
		}
		page := e.ok("exec", c.from, "--", "bash", "-c", `exec 3<>/dev/tcp/`+c.to+`/80 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
		if want := "page of " + strings.TrimSuffix(c.to, ".silo"); !strings.HasSuffix(page, want+"\n") {
			t.Errorf("from %s, http://%s/ gives:\n%s", c.from, c.to, page)
		}
	}

	// The host and the outside.
	mustGet(t, e.netns, d1.v4+":80", page("d1"))
	got := hear(listenIn(t, e.netns, gw+":9000"))
	e.sh("d1", "echo from d1 | nc -w 3 "+gw+" 9000")
	if h := expectHeard(t, got, "from d1\n"); h.peer.String() != d1.v4 {
		t.Errorf("the host saw d1's connection come from %s", h.peer)
	}
	outside := hear(listenIn(t, out, "192.0.2.2:9000"))
	e.sh("d2", "echo from d2 | nc -w 3 192.0.2.2 9000")
	if h := expectHeard(t, outside, "from d2\n"); h.peer.String() != "192.0.2.1" {
		t.Errorf("the outside saw d2's connection come from %s, want the host's 192.0.2.1", h.peer)
	}

	// Forwards in both modes.
	e.ok("config", "device", "add", "d1", "web", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80")
	e.ok("config", "device", "add", "d1", "webnat", "proxy", "listen=tcp:0.0.0.0:8081", "connect=tcp:"+d1.v4+":80", "nat=true")
	for _, addr := range []string{"127.0.0.1:8080", gw + ":8080", "127.0.0.1:8081", gw + ":8081"} {
		mustGet(t, e.netns, addr, page("d1"))
	}
	mustGet(t, out, "192.0.2.1:8081", page("d1"))

	// A nic plugged live: its address at once, which networkd's DHCP
	// client then confirms.
	e.ok("network", "create", "net2")
	e.ok("config", "device", "add", "d2", "eth1", "nic", "network=net2")
	eth1 := e.nic("d2", "eth1")
	if got := e.inetAddrs("d2", "-4", "eth1"); !slices.Equal(got, []string{eth1.v4 + "/24"}) {
		t.Fatalf("eth1 right after the add: %v, want %s", got, eth1.v4)
	}
	eventually(t, "networkd's DHCP on eth1", func() bool {
		return strings.Contains(e.sh("d2", "ip -4 -o addr show dev eth1 scope global"), "dynamic")
	})
	if got := e.inetAddrs("d2", "-4", "eth1"); !slices.Equal(got, []string{eth1.v4 + "/24"}) {
		t.Fatalf("eth1 after DHCP: %v, want %s", got, eth1.v4)
	}
	e.ok("config", "device", "remove", "d2", "eth1")
	e.noInterface("d2", "eth1")
	e.hostMatchesRecords()
	e.consistent()
}
