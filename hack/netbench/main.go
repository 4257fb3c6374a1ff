// Command netbench measures silo's networking with whole commands, as
// users run them, on a btrfs loop pool, with the busybox image
// (hack/busybox-image.sh) and the Debian bookworm minbase image with
// systemd-networkd's DHCP client (hack/debian-image.sh):
//
//   - network ready: from "silo start" returning to the first TCP connect
//     from the host to a listener that the busybox instance's init starts
//     before it execs busybox's init;
//   - Debian: "silo start --wait", and whether the instance's eth0 holds
//     the address silo recorded at that moment, and whether its DHCP
//     client has already taken it over as a lease;
//   - throughput with iperf3 from the host to an instance over the bridge,
//     beside a bare veth pair between two namespaces, run for run;
//   - launch to first exec of busybox with a nic and with --no-network,
//     one after the other in each run;
//   - with -density N, Debian instances launched in waves on one network
//     until N run, each waited for and pinged at its address: where it
//     stops and what silo said.
//
// silo, and every server and client here, runs in network namespaces
// that the benchmark makes and deletes: the host's network sees nothing.
// It needs root, runc, btrfs-progs, iproute2, iperf3 and busybox-static
// (make bench-net provides them).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs      = flag.Int("runs", 10, "timed runs per figure")
	iperfRuns = flag.Int("iperf-runs", 5, "iperf3 runs over each path")
	iperfTime = flag.Int("iperf-time", 3, "seconds of each iperf3 run")
	density   = flag.Int("density", 0, "Debian instances to run at once on one network (0 to skip)")
	wave      = flag.Int("wave", 10, "instances launched at once while ramping up")
)

// listenerInit is the busybox instance's init: a web server first, then
// busybox's init, so that the listener is up as early as the instance
// can have one.
const listenerInit = "#!/bin/sh\nhttpd -p 80 -h /\nexec /sbin/init\n"

func main() {
	flag.Parse()
	bench := benchutil.NewDebian("netbench")
	defer bench.Close()
	benchutil.Check(bench.Run("image", "import", benchutil.BusyboxImage(), "--alias", "busybox"))
	initFile := filepath.Join(bench.Work, "init")
	benchutil.Check(os.WriteFile(initFile, []byte(listenerInit), 0o755))
	// The first create of each image puts it on the pool, and the first
	// start brings the default network up; neither is timed.
	benchutil.Check(bench.Run("launch", "busybox", "warm", "--pool", "bench"))
	benchutil.Check(bench.Run("delete", "--force", "warm"))
	benchutil.Check(bench.Run("create", "debian", "warm", "--pool", "bench"))
	benchutil.Check(bench.Run("delete", "warm"))
	fmt.Printf("silo in a network namespace of its own, btrfs loop pool; %d runs per figure; medians [min-max]\n\n", *runs)

	networkReady(bench, initFile)
	launch(bench)
	debianAddress(bench)
	throughput(bench)
	if *density > 0 {
		dense(bench)
	}
}

// networkReady times, for busybox, "silo start" and the wait from its
// return to the first TCP connect to the listener that init starts.
func networkReady(bench *benchutil.Debian, initFile string) {
	var start, ready []time.Duration
	for i := range *runs {
		name := fmt.Sprintf("ready%d", i)
		benchutil.Check(bench.Run("create", "busybox", name, "--pool", "bench", "-c", "init=/sbin/bench-init"))
		benchutil.Check(bench.Run("file", "push", "--mode", "0755", initFile, name+"/sbin/bench-init"))
		addr := address(info(bench, name), "eth0")
		start = append(start, benchutil.Timed(func() error { return bench.Run("start", name) }))
		began := time.Now()
		benchutil.Check(bench.NS.Do(func() error { return dialUntil(netip.AddrPortFrom(addr, 80), 5*time.Second) }))
		ready = append(ready, time.Since(began))
		benchutil.Check(bench.Run("delete", "--force", name))
	}
	fmt.Printf("busybox: start                               %s\n", benchutil.Stat(start))
	fmt.Printf("  then to the first TCP connect from the host %s   [target < 20 ms]\n", benchutil.Stat(ready))
}

// dialUntil connects to addr until it answers, or fails after limit.
// It runs in the namespace the connection is to come from.
func dialUntil(addr netip.AddrPort, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connect to %s: %w", addr, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// launch times launch to first exec of busybox with the default profile's
// nic and with --no-network, which goes first alternating from run to run.
func launch(bench *benchutil.Debian) {
	var nic, none []time.Duration
	launched := func(name string, args ...string) time.Duration {
		d := benchutil.Timed(func() error {
			if err := bench.Run(append([]string{"launch", "busybox", name, "--pool", "bench"}, args...)...); err != nil {
				return err
			}
			return bench.Run("exec", name, "--", "true")
		})
		benchutil.Check(bench.Run("delete", "--force", name))
		return d
	}
	for i := range *runs {
		if i%2 == 0 {
			nic = append(nic, launched(fmt.Sprintf("nic%d", i)))
		}
		none = append(none, launched(fmt.Sprintf("none%d", i), "--no-network"))
		if i%2 == 1 {
			nic = append(nic, launched(fmt.Sprintf("nic%d", i)))
		}
	}
	fmt.Printf("\nbusybox launch to first exec, with a nic    %s\n", benchutil.Stat(nic))
	fmt.Printf("  with --no-network                         %s\n", benchutil.Stat(none))
	fmt.Printf("  the nic's cost (difference of medians)    %.1f ms   [target <= 15 ms]\n", ms(benchutil.Median(nic)-benchutil.Median(none)))
}

// debianAddress times "silo start --wait" of Debian, whose
// systemd-networkd asks for its address by DHCP, and checks eth0 the
// moment it returns: it must hold the address silo recorded.
func debianAddress(bench *benchutil.Debian) {
	var start []time.Duration
	matched, leased := 0, 0
	var mismatches []string
	for i := range *runs {
		name := fmt.Sprintf("deb%d", i)
		benchutil.Check(bench.Run("create", "debian", name, "--pool", "bench"))
		start = append(start, benchutil.Timed(func() error { return bench.Run("start", name, "--wait") }))
		inst := info(bench, name)
		want := address(inst, "eth0")
		got, dynamic := eth0Addresses(int(inst.State.Pid))
		if len(got) == 1 && got[0] == want {
			matched++
			if dynamic[0] {
				leased++
			}
		} else {
			mismatches = append(mismatches, fmt.Sprintf("%s: %v, recorded %s", name, got, want))
		}
		benchutil.Check(bench.Run("delete", "--force", name))
	}
	fmt.Printf("\nDebian (networkd DHCP): start --wait        %s\n", benchutil.Stat(start))
	fmt.Printf("  eth0 holds the recorded address, and no other, on return: %d of %d (already as networkd's DHCP lease: %d)\n",
		matched, *runs, leased)
	fmt.Printf("  [LXD 5.0: an address in lxc list 396 ms after lxc start, busybox with udhcpc]\n")
	for _, m := range mismatches {
		fmt.Printf("  mismatch %s\n", m)
	}
}

// eth0Addresses are the IPv4 addresses of eth0 in the network namespace
// of the process pid, and whether each is dynamic (a DHCP client's lease,
// with a lifetime) rather than silo's, which is permanent. It reads the
// namespace from the host with iproute2, which the Debian minbase image
// has not.
func eth0Addresses(pid int) ([]netip.Addr, []bool) {
	ns, err := benchutil.OpenNetNS(fmt.Sprintf("/proc/%d/ns/net", pid))
	benchutil.Check(err)
	defer ns.Close()
	out, err := ns.Output(exec.Command("ip", "-j", "-4", "addr", "show", "dev", "eth0"))
	benchutil.Check(err)
	var links []struct {
		AddrInfo []struct {
			Local   string `json:"local"`
			Dynamic bool   `json:"dynamic"`
		} `json:"addr_info"`
	}
	benchutil.Check(json.Unmarshal(out, &links))
	var addrs []netip.Addr
	var dynamic []bool
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			benchutil.Check(err)
			addrs, dynamic = append(addrs, addr), append(dynamic, a.Dynamic)
		}
	}
	return addrs, dynamic
}

// throughput runs iperf3 from the benchmark's namespace to a server in a
// busybox instance's network namespace, over silo's bridge, and from one
// namespace to another over a bare veth pair, in turn.
func throughput(bench *benchutil.Debian) {
	benchutil.Check(bench.Run("launch", "busybox", "iperf", "--pool", "bench"))
	bench.Track("iperf")
	inst := info(bench, "iperf")
	instNS, err := benchutil.OpenNetNS(fmt.Sprintf("/proc/%d/ns/net", inst.State.Pid))
	benchutil.Check(err)
	defer instNS.Close()
	stopInst := iperfServer(instNS)
	defer stopInst()

	// The bare pair: made from inside one of the namespaces, never on
	// the host, with documentation addresses that route nowhere.
	client, server := benchutil.NewNetNS("silo-bench-veth"), benchutil.NewNetNS("silo-bench-veth")
	defer client.Close()
	defer server.Close()
	for _, args := range [][]string{
		{"-n", client.Name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", server.Name},
		{"-n", client.Name, "addr", "add", "192.0.2.1/24", "dev", "veth0"},
		{"-n", server.Name, "addr", "add", "192.0.2.2/24", "dev", "veth1"},
		{"-n", client.Name, "link", "set", "veth0", "up"},
		{"-n", server.Name, "link", "set", "veth1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			benchutil.Check(fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out))
		}
	}
	stopVeth := iperfServer(server)
	defer stopVeth()

	target := address(inst, "eth0").String()
	var bridge, veth []float64
	for i := range *iperfRuns {
		if i%2 == 0 {
			bridge = append(bridge, iperf(bench.NS, target))
		}
		veth = append(veth, iperf(client, "192.0.2.2"))
		if i%2 == 1 {
			bridge = append(bridge, iperf(bench.NS, target))
		}
	}
	fmt.Printf("\niperf3, host to instance over the bridge    %s\n", gbits(bridge))
	fmt.Printf("  a bare veth pair between two namespaces   %s\n", gbits(veth))
	fmt.Printf("  bridge / veth                             %.2f   [target >= 0.90]\n", median(bridge)/median(veth))
}

// iperfServer starts an iperf3 server in ns and returns what stops it.
func iperfServer(ns *benchutil.NetNS) func() {
	cmd := exec.Command("iperf3", "-s")
	benchutil.Check(ns.Start(cmd))
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// iperf runs iperf3 from ns to the server at addr and returns what the
// server received, in Gbit/s. The server may still be starting: a client
// that cannot connect tries again.
func iperf(ns *benchutil.NetNS, addr string) float64 {
	for try := 0; ; try++ {
		var stderr strings.Builder
		cmd := exec.Command("iperf3", "-c", addr, "-t", fmt.Sprint(*iperfTime), "-J")
		cmd.Stderr = &stderr
		out, err := ns.Output(cmd)
		var res struct {
			Error string `json:"error"`
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
			err = jerr
		}
		if err == nil && res.Error == "" {
			return res.End.SumReceived.BitsPerSecond / 1e9
		}
		if try == 50 || !strings.Contains(res.Error, "connect") {
			benchutil.Check(fmt.Errorf("iperf3 to %s: %v: %s%s", addr, err, res.Error, stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// denseNet is the density run's network: a /20, so that addresses are
// not what stops it before the bridge's 1024 ports do. silo's automatic
// subnets are 10.x.y.0/24s and cannot collide with it.
const denseNet = "172.16.0.1/20"

// dense launches Debian instances on one network in waves, each waited
// for and then pinged at its address, until -density run or one fails.
func dense(bench *benchutil.Debian) {
	benchutil.Check(bench.Run("network", "create", "dense", "ipv4.address="+denseNet))
	began := time.Now()
	running, failed := benchutil.Waves(*density, *wave, func(i int) error {
		name := fmt.Sprintf("d%d", i)
		bench.Track(name)
		if err := bench.Run("launch", "debian", name, "--pool", "bench", "--network", "dense", "--wait", "--timeout", "5m"); err != nil {
			return err
		}
		return ping(bench, name)
	})
	fmt.Printf("\nDebian instances running at once on one network, each pinged at its address: %d of %d asked, in %s\n",
		running, *density, time.Since(began).Round(time.Second))
	if failed != nil {
		fmt.Printf("  stopped at: %v\n", failed)
	}
	fmt.Printf("  host memory available with them running: %s\n", benchutil.MemAvailable())
}

// ping sends one echo request from the benchmark's namespace to the
// address silo recorded for instance name.
func ping(bench *benchutil.Debian, name string) error {
	addr := address(info(bench, name), "eth0")
	if out, err := bench.NS.Output(exec.Command("busybox", "ping", "-c", "1", "-W", "2", addr.String())); err != nil {
		return fmt.Errorf("ping %s at %s: %w: %s", name, addr, err, out)
	}
	return nil
}

// info is silo's view of instance name.
func info(bench *benchutil.Debian, name string) *api.Instance {
	var inst api.Instance
	benchutil.Check(bench.JSON(&inst, "info", name))
	return &inst
}

// address is the IPv4 address silo recorded for the instance's nic dev.
func address(inst *api.Instance, dev string) netip.Addr {
	for _, a := range inst.State.Network[dev].Addresses {
		if a.Family == "inet" {
			addr, err := netip.ParseAddr(a.Address)
			benchutil.Check(err)
			return addr
		}
	}
	benchutil.Check(fmt.Errorf("%s has no IPv4 address on %s", inst.Name, dev))
	return netip.Addr{}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// gbits is the median of xs and their range, as Stat has it for times.
func gbits(xs []float64) string {
	return fmt.Sprintf("%.1f Gbit/s [%.1f-%.1f]", median(xs), slices.Min(xs), slices.Max(xs))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
