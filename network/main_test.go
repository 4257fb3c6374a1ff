package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/testutil"
)

// netnsEnv names the network namespace that the tests run in, once
// TestMain has made it and run the test binary again inside it.
const netnsEnv = "SILO_NETWORK_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run()) // the tests that need root skip, or fail under CI
	}
	if os.Getenv(netnsEnv) == "" {
		os.Exit(inFreshNetns())
	}
	if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}}); err != nil {
		fmt.Fprintln(os.Stderr, "set lo up:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// inFreshNetns runs this test binary again inside a network namespace of
// its own, so that no test touches the host's interfaces, routes or
// nftables; then deletes the namespace, with any process left in it.
func inFreshNetns() int {
	name := fmt.Sprintf("silo-test-network-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "ip netns add %s: %v: %s\n", name, err, out)
		return 1
	}
	path := filepath.Join("/run/netns", name)
	defer func() {
		killIn(path)
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip netns del %s: %v: %s\n", name, err, out)
		}
	}()
	cmd := exec.Command("nsenter", append([]string{"--net=" + path, "--", os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// killIn kills the processes that are still in the network namespace at
// path: a dnsmasq that a failing test left would keep it alive.
func killIn(path string) {
	var ns unix.Stat_t
	if unix.Stat(path, &ns) != nil {
		return
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ns.Ino && st.Dev == ns.Dev {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// testNet is a network with both families, NAT and a domain, on bridge
// br with subnets 10.77.third.0/24 and fd77:0:0:third::/64, removed when
// the test ends. Its directory is searchable by others, as dnsmasq needs.
func testNet(t testing.TB, br string, third byte) Net {
	t.Helper()
	testutil.NeedRoot(t, "bridges, nftables and dnsmasq")
	dir, err := os.MkdirTemp("", "silo-network-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := Net{
		Name:    "net-" + br,
		Bridge:  br,
		IPv4:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, third, 1}), 24),
		IPv4NAT: true,
		IPv6:    netip.MustParsePrefix(fmt.Sprintf("fd77:0:0:%x::1/64", third)),
		Domain:  "silo",
		Dir:     filepath.Join(dir, "net"),
	}
	t.Cleanup(func() {
		if err := Remove(context.Background(), br, n.Dir); err != nil {
			t.Errorf("Remove: %v", err)
		}
		os.RemoveAll(dir)
	})
	return n
}

// addr4 and addr6 are address host of the test network's subnets.
func addr4(n Net, host byte) netip.Addr {
	a := n.IPv4.Addr().As4()
	a[3] = host
	return netip.AddrFrom4(a)
}

func addr6(n Net, host byte) netip.Addr {
	a := n.IPv6.Addr().As16()
	a[15] = host
	return netip.AddrFrom16(a)
}

func mustEnsure(t testing.TB, n Net) {
	t.Helper()
	if err := Ensure(context.Background(), n); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

// sandbox starts a process in a network namespace of its own, owned by a
// user namespace of its own if userns, as an unprivileged instance's
// init would be; it is killed when the test ends.
func sandbox(t testing.TB, userns bool) int {
	t.Helper()
	args := []string{"--net"}
	if userns {
		args = append(args, "--user", "--map-root-user")
	}
	cmd := exec.Command("unshare", append(args, "sleep", "600")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		// unshare has made the namespace once the pid's differs from ours.
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)); err == nil && ns != self {
			return cmd.Process.Pid
		}
	}
	t.Fatal("unshare made no network namespace")
	return 0
}

// inNS runs a command in the network namespace of process pid.
func inNS(pid int, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", pid), "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// ping sends one ping to dst from the namespace of pid, from src if it is
// valid, and tells whether the answer came.
func ping(pid int, src, dst netip.Addr) bool {
	args := []string{"/bin/busybox", "ping", "-c", "1", "-W", "1"}
	if dst.Is6() {
		args = append(args, "-6")
	}
	if src.IsValid() {
		args = append(args, "-I", src.String())
	}
	_, err := inNS(pid, append(args, dst.String())...)
	return err == nil
}

// withNetns runs f on a thread that is in the network namespace of
// process pid: the sockets that f makes live there.
func withNetns(t testing.TB, pid int, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // the thread must not go back to the pool elsewhere
		}
	}()
	f()
}

// serve answers every TCP connection to addr in the namespace of pid with
// greeting and the address the connection came from.
func serve(t testing.TB, pid int, addr string, greeting string) {
	t.Helper()
	var l net.Listener
	withNetns(t, pid, func() {
		var err error
		if l, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s from %s\n", greeting, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// fetch connects to addr and returns what it says; dial makes the
// connection (in another namespace, say), nil for this one.
func fetch(addr string, dial func(string) (net.Conn, error)) (string, error) {
	if dial == nil {
		dial = func(a string) (net.Conn, error) { return net.DialTimeout("tcp", a, 2*time.Second) }
	}
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// dialFrom dials in the namespace of pid.
func dialFrom(t testing.TB, pid int) func(string) (net.Conn, error) {
	return func(addr string) (c net.Conn, err error) {
		withNetns(t, pid, func() { c, err = net.DialTimeout("tcp", addr, 2*time.Second) })
		return c, err
	}
}

// ruleHandles lists the handles of every rule in the network's tables: a
// rebuild gives new ones, so equal lists mean untouched tables.
func ruleHandles(t testing.TB, bridge string) []uint64 {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	var handles []uint64
	for _, ch := range chains {
		if ch.Table.Name != tableName(bridge) {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			handles = append(handles, r.Handle)
		}
	}
	return handles
}

// hasTable tells whether the table of bridge exists in family.
func hasTable(t testing.TB, bridge string, family nftables.TableFamily) bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTablesOfFamily(family)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ts {
		if tb.Name == tableName(bridge) {
			return true
		}
	}
	return false
}

// dnsmasqPid is the pid of the network's running dnsmasq, or 0.
func dnsmasqPid(n Net) int {
	pid, ok := readPid(n.Dir)
	if !ok || !isDnsmasqOf(pid, n.Dir) {
		return 0
	}
	return pid
}

// lookup asks the network's dnsmasq for name.
func lookup(n Net, name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", netip.AddrPortFrom(n.IPv4.Addr(), 53).String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

func link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}

func linkGone(name string) bool {
	_, err := netlink.LinkByName(name)
	return errors.As(err, &netlink.LinkNotFoundError{})
}
