package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/testutil"
)

// The network tests play the host's side in the env's network namespace,
// where silo runs, and the world beyond the host in a second namespace,
// "outside", joined to it by a veth. No test touches an interface of the
// real host.

// inNS runs fn on an OS thread in network namespace ns (a name under
// /run/netns): the sockets fn makes belong to ns, wherever they are used
// afterwards.
func inNS(ns string, fn func() error) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer f.Close()
	return testutil.DoInNetNS(f, fn)
}

// dialIn connects to addr from network namespace ns.
func dialIn(ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 3*time.Second)
		return err
	})
	return c, err
}

// listenIn listens on TCP addr in network namespace ns until the test ends.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNS(ns, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// heard is a connection a listener took: who made it, and what it sent.
type heard struct {
	peer netip.Addr
	data string
}

// hear takes the connections of l, each read to its end.
func hear(l net.Listener) <-chan heard {
	ch := make(chan heard, 64)
	serveEach(l, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		ch <- heard{ap.Addr().Unmap(), string(b)}
	})
	return ch
}

// serveEach hands each connection l takes to serve, in a goroutine of
// its own, and closes it after.
func serveEach(l net.Listener, serve func(c net.Conn)) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}

// expectHeard waits for a connection that sent data.
func expectHeard(t *testing.T, ch <-chan heard, data string) heard {
	t.Helper()
	select {
	case h := <-ch:
		if h.data != data {
			t.Fatalf("the listener heard %q from %s, want %q", h.data, h.peer, data)
		}
		return h
	case <-time.After(5 * time.Second):
		t.Fatalf("the listener heard nothing, want %q", data)
	}
	return heard{}
}

// expectNothing checks that no connection came.
func expectNothing(t *testing.T, ch <-chan heard) {
	t.Helper()
	select {
	case h := <-ch:
		t.Fatalf("the listener heard %q from %s, want nothing", h.data, h.peer)
	case <-time.After(200 * time.Millisecond):
	}
}

// httpGet fetches / from a busybox httpd at addr, from network namespace
// ns, and returns the body.
func httpGet(ns, addr string) (string, error) {
	c, err := dialIn(ns, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(string(b), "HTTP/1.") {
		return "", fmt.Errorf("no HTTP answer from %s: %q", addr, b)
	}
	return body, nil
}

// mustGet is httpGet that fails the test unless the page is want.
func mustGet(t *testing.T, ns, addr, want string) {
	t.Helper()
	got, err := httpGet(ns, addr)
	if err != nil || got != want {
		t.Fatalf("GET http://%s/ from namespace %s: %q, %v; want %q", addr, ns, got, err, want)
	}
}

// refused checks that nothing listens on TCP addr any more, as seen from ns.
func refused(t *testing.T, ns, addr string) {
	t.Helper()
	c, err := dialIn(ns, "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("%s still takes connections", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s: %v, want connection refused", addr, err)
	}
}

// udpEcho sends msg to addr from ns and expects it back.
func udpEcho(t *testing.T, ns, addr, msg string) {
	t.Helper()
	c, err := dialIn(ns, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// UDP may lose the first datagram while a session is set up: send
	// again until an answer comes.
	buf := make([]byte, 512)
	for try := 0; try < 10; try++ {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			if string(buf[:n]) != msg {
				t.Fatalf("udp %s answered %q, want %q", addr, buf[:n], msg)
			}
			return
		}
	}
	t.Fatalf("udp %s from namespace %s: no answer", addr, ns)
}

// lookupIn asks the DNS server at server (an address and port) for the
// IPv4 addresses of name, from network namespace ns.
func lookupIn(ns, server, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialIn(ns, network, server)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := r.LookupIP(ctx, "ip4", name)
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out, err
}

// ip runs the ip command on network namespace ns.
func ip(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inEnvNS runs argv in the env's network namespace.
func (e *env) inEnvNS(argv ...string) string {
	e.t.Helper()
	out, err := testutil.InNetNS(e.netns, argv...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s in %s: %v: %s", strings.Join(argv, " "), e.netns, err, out)
	}
	return string(out)
}

// outside makes the namespace that plays the world beyond the host,
// joined to the env's by the veth sx-up (192.0.2.1, 2001:db8::1 on the
// env's side) and sx-down (192.0.2.2, 2001:db8::2 outside); the env's
// default routes lead there. The outside knows no way back to silo's
// subnets: it sees only what the env's NAT lets through as its own.
func (e *env) outside() string {
	e.t.Helper()
	out := testutil.NetNS(e.t)
	ip(e.t, e.netns, "link", "add", "sx-up", "type", "veth", "peer", "name", "sx-down", "netns", out)
	ip(e.t, e.netns, "addr", "add", "192.0.2.1/24", "dev", "sx-up")
	ip(e.t, e.netns, "addr", "add", "2001:db8::1/64", "dev", "sx-up", "nodad")
	ip(e.t, e.netns, "link", "set", "sx-up", "up")
	ip(e.t, out, "addr", "add", "192.0.2.2/24", "dev", "sx-down")
	ip(e.t, out, "addr", "add", "2001:db8::2/64", "dev", "sx-down", "nodad")
	ip(e.t, out, "link", "set", "sx-down", "up")
	ip(e.t, e.netns, "route", "add", "default", "via", "192.0.2.2")
	ip(e.t, e.netns, "-6", "route", "add", "default", "via", "2001:db8::2")
	return out
}

// sh runs a shell script in instance name and returns its output.
func (e *env) sh(name, script string) string {
	e.t.Helper()
	return e.ok("exec", name, "--", "sh", "-c", script)
}

// push writes data to path in instance name, with mode.
func (e *env) push(name, path, mode string, data []byte) {
	e.t.Helper()
	if r := e.runIn(data, "file", "push", "--mode", mode, "-", name+path); r.code != 0 {
		e.t.Fatalf("file push %s%s: exit %d: %s", name, path, r.code, r.err)
	}
}

// serveHTTP starts busybox's httpd on port 80 of instance name, serving
// "page of NAME", and returns once it listens: it may go to the
// background before it does.
func (e *env) serveHTTP(name string) {
	e.t.Helper()
	e.sh(name, "mkdir -p /www && echo page of "+name+" >/www/index.html && httpd -p 80 -h /www && "+
		"until grep -qE ':0050 [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6; do sleep 0.05; done")
}

// fetch gets http://host:port/ from inside instance name, with busybox's
// nc (its wget crashes, in Debian's static build), and returns the body.
func (e *env) fetch(name, host, port string) string {
	e.t.Helper()
	out := e.sh(name, `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 `+host+" "+port)
	_, body, ok := strings.Cut(out, "\r\n\r\n")
	if !ok {
		e.t.Fatalf("no HTTP answer from %s:%s in %s: %q", host, port, name, out)
	}
	return body
}

// page is what serveHTTP serves.
func page(name string) string { return "page of " + name + "\n" }

// nicState is what silo records of a nic of an instance.
type nicState struct {
	v4, v6    string // addresses; "" if none
	mac, host string // MAC; the host side's name
}

func (e *env) nic(name, dev string) nicState {
	e.t.Helper()
	n, ok := e.instanceOf(name).State.Network[dev]
	if !ok {
		e.t.Fatalf("instance %s has no nic %s", name, dev)
	}
	s := nicState{mac: n.Hwaddr, host: n.HostName}
	for _, a := range n.Addresses {
		if a.Family == "inet" {
			s.v4 = a.Address
		} else {
			s.v6 = a.Address
		}
	}
	return s
}

// gateway is network name's own addresses on its bridge.
func (e *env) gateway(name string) (v4, v6 netip.Prefix) {
	e.t.Helper()
	var n api.Network
	e.json(&n, "network", "info", name)
	v4, _ = netip.ParsePrefix(n.Config["ipv4.address"])
	v6, _ = netip.ParsePrefix(n.Config["ipv6.address"])
	return v4, v6
}

// inetAddrs lists the addresses (with their prefix length) of family
// ("-4" or "-6") and scope global on interface dev of instance name.
func (e *env) inetAddrs(name, family, dev string) []string {
	e.t.Helper()
	out := e.sh(name, "ip "+family+" -o addr show dev "+dev+" scope global")
	var addrs []string
	for _, m := range regexp.MustCompile(`inet6? (\S+)`).FindAllStringSubmatch(out, -1) {
		addrs = append(addrs, m[1])
	}
	return addrs
}

// hasRARoute says whether instance name has a default IPv6 route from a
// router advertisement: through the router's link-local address, as the
// host's ip shows it in the instance's namespace. (silo's own goes
// through the gateway's global address; busybox's ip does not show where
// a route came from; systemd-networkd's joins silo's as a second next
// hop, which ip shows without a proto.)
func (e *env) hasRARoute(name string) bool {
	e.t.Helper()
	out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", e.status(name).Pid), "ip", "-6", "route", "show", "default").CombinedOutput()
	if err != nil {
		e.t.Fatalf("the routes of %s: %v: %s", name, err, out)
	}
	return regexp.MustCompile(`via fe80::\S+ dev eth0 `).Match(out)
}

// networkDir is where the engine keeps network name's dnsmasq files.
func (e *env) networkDir(name string) string {
	sum := sha256.Sum256([]byte(e.state))
	return filepath.Join("/run/silo", hex.EncodeToString(sum[:6]), ".networks", name)
}

// dnsmasqPids lists the dnsmasq processes of the env's networks, by
// network name.
func (e *env) dnsmasqPids() map[string][]int {
	base := filepath.Dir(e.networkDir("x"))
	out := map[string][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(args) != 2 || filepath.Base(args[0]) != "dnsmasq" {
			continue
		}
		conf, ok := strings.CutPrefix(args[1], "--conf-file="+base+"/")
		if name, file, _ := strings.Cut(conf, "/"); ok && file == "dnsmasq.conf" {
			out[name] = append(out[name], pid)
		}
	}
	return out
}

// links lists the interfaces of type typ in network namespace ns.
func links(t *testing.T, ns, typ string) []string {
	t.Helper()
	var ls []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(ip(t, ns, "-j", "link", "show", "type", typ)), &ls); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

// nftTables lists the nftables tables of the env's namespace, as
// "FAMILY NAME".
func (e *env) nftTables() []string {
	e.t.Helper()
	var out struct {
		Nftables []struct {
			Table *struct{ Family, Name string } `json:"table"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(e.inEnvNS("nft", "-j", "list", "tables")), &out); err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for _, o := range out.Nftables {
		if o.Table != nil {
			tables = append(tables, o.Table.Family+" "+o.Table.Name)
		}
	}
	slices.Sort(tables)
	return tables
}

// proxies lists the port forwarders running in the env's namespace, by
// what they listen on.
func (e *env) proxies() []string {
	e.t.Helper()
	out, err := exec.Command("ip", "netns", "pids", e.netns).Output()
	if err != nil {
		e.t.Fatal(err)
	}
	var listens []string
	for _, f := range strings.Fields(string(out)) {
		cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
		if string(cmdline) != "silo-proxy\x00" {
			continue
		}
		environ, _ := os.ReadFile("/proc/" + f + "/environ")
		for _, kv := range strings.Split(string(environ), "\x00") {
			if v, ok := strings.CutPrefix(kv, "SILO_PROXY_LISTEN="); ok {
				listens = append(listens, v)
			}
		}
	}
	slices.Sort(listens)
	return listens
}

// hostMatchesRecords checks that what silo's networks have on the host
// is what the records say, and nothing more: every recorded network is
// either wholly up (bridge, nftables table, one dnsmasq, its directory)
// or has none of these; no bridge, table, dnsmasq or directory is left of
// a network without a record; the veths are those of the running
// instances' nics; the forwarders those of their userspace proxies.
func (e *env) hostMatchesRecords() {
	e.t.Helper()
	var nets []api.Network
	e.apiJSON(&nets, "network", "list")
	recorded := map[string]bool{}
	for _, n := range nets {
		recorded[n.Name] = true
	}
	bridges := links(e.t, e.netns, "bridge")
	tables := e.nftTables()
	dnsmasq := e.dnsmasqPids()
	dirs := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Dir(e.networkDir("x")))
	for _, ent := range entries {
		dirs[ent.Name()] = true
	}
	for name := range recorded {
		up := []bool{slices.Contains(bridges, name), slices.Contains(tables, "inet silo_"+name), len(dnsmasq[name]) == 1}
		if slices.Contains(up, true) && (slices.Contains(up, false) || !dirs[name]) {
			e.t.Errorf("network %s is half there: bridge, table, dnsmasq %v, directory %v", name, up, dirs[name])
		}
		if len(dnsmasq[name]) > 1 {
			e.t.Errorf("network %s has %d dnsmasq processes", name, len(dnsmasq[name]))
		}
	}
	for _, b := range bridges {
		if !recorded[b] {
			e.t.Errorf("bridge %s has no network record", b)
		}
	}
	for _, tb := range tables {
		if _, name, _ := strings.Cut(tb, " silo_"); !recorded[name] {
			e.t.Errorf("nftables table %s is of no recorded network", tb)
		}
	}
	for name := range dnsmasq {
		if !recorded[name] {
			e.t.Errorf("dnsmasq %v runs for network %s, which has no record", dnsmasq[name], name)
		}
	}
	for name := range dirs {
		if !recorded[name] {
			e.t.Errorf("directory of network %s, which has no record, is left", name)
		}
	}
	var wantVeths, wantProxies []string
	for _, i := range e.instances() {
		if i.StatusCode != api.Running {
			continue
		}
		for _, n := range i.State.Network {
			if n.HostName != "" {
				wantVeths = append(wantVeths, n.HostName)
			}
		}
		for _, d := range i.ExpandedDevices {
			if d["type"] == "proxy" && d["nat"] != "true" {
				wantProxies = append(wantProxies, d["listen"])
			}
		}
	}
	slices.Sort(wantVeths)
	slices.Sort(wantProxies)
	var veths []string
	for _, v := range links(e.t, e.netns, "veth") {
		if !strings.HasPrefix(v, "sx-") { // the test's own
			veths = append(veths, v)
		}
	}
	if !slices.Equal(veths, wantVeths) {
		e.t.Errorf("veths on the host %v, want those of the running instances' nics %v", veths, wantVeths)
	}
	if got := e.proxies(); !slices.Equal(got, wantProxies) {
		e.t.Errorf("forwarders listen on %v, want %v", got, wantProxies)
	}
	if e.t.Failed() {
		e.t.FailNow()
	}
}

// testPrograms are the tests' own programs, built once.
var testPrograms = struct {
	sync.Mutex
	paths map[string]string
}{paths: map[string]string{}}

// testProgram builds, once, the static program of testdata/name, to push
// into instances.
func testProgram(t *testing.T, name string) []byte {
	t.Helper()
	testPrograms.Lock()
	defer testPrograms.Unlock()
	p, ok := testPrograms.paths[name]
	if !ok {
		p = filepath.Join(filepath.Dir(siloBin), name)
		cmd := exec.Command("go", "build", "-o", p, "./testdata/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v: %s", name, err, out)
		}
		testPrograms.paths[name] = p
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// busyboxBinary is the static busybox of the busybox test image, to
// give an image without one its tools.
func busyboxBinary(t *testing.T) []byte {
	t.Helper()
	var b []byte
	busyboxEntries(t, func(hdr *tar.Header, body io.Reader) {
		if hdr.Name == "./bin/busybox" {
			var err error
			if b, err = io.ReadAll(body); err != nil {
				t.Fatal(err)
			}
		}
	})
	if b == nil {
		t.Fatal("no bin/busybox in the busybox image")
	}
	return b
}

// noInterface checks that instance name has no interface dev.
func (e *env) noInterface(name, dev string) {
	e.t.Helper()
	if r := e.run("exec", name, "--", "ip", "link", "show", "dev", dev); r.code == 0 {
		e.t.Fatalf("%s still has %s:\n%s", name, dev, r.out)
	}
}

// parallel runs fn(i) for i in [0, n), at most width at once, and fails
// the test with the errors fn returns.
func parallel(t *testing.T, n, width int, fn func(i int) error) {
	t.Helper()
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
