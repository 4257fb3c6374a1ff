package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/runtime/container"
)

// envTest tells what the test binary is started again as: "netns" for the
// tests in a network namespace of their own, "serve" for an instance's
// servers in another.
const envTest = "SILO_PROXY_TEST"

// Ports the instance serves on its loopback.
const (
	sumPort  = 80 // answers once the client has half-closed: see answer
	echoPort = 7  // TCP echo
	udpPort  = 53 // UDP echo
)

func TestMain(m *testing.M) {
	if cfg, ok := FromEnv(); ok {
		os.Exit(Main(cfg))
	}
	switch os.Getenv(envTest) {
	case "serve":
		os.Exit(serve())
	case "netns":
		if err := loUp(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "":
		if os.Geteuid() == 0 {
			// What the tests listen on is then on a loopback of their
			// own, which nothing else uses and which ends with them.
			os.Exit(again("netns", os.Args[1:]...))
		}
	}
	os.Exit(m.Run())
}

// again runs the test binary as role, in a new network namespace, and
// returns its exit code.
func again(role string, args ...string) int {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envTest+"="+role)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// loUp brings up the loopback of a new network namespace.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// serve is the instance: its servers on its loopback, on IPv4 and, where
// the kernel has it, IPv6. It says "ready" on stdout, and serves until
// killed.
func serve() int {
	if err := loUp(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, unix.SIGTERM)
	for _, host := range []string{"127.0.0.1", "::1"} {
		sum, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(sumPort)))
		if err != nil && host == "::1" {
			break // no IPv6
		}
		echo, err2 := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(echoPort)))
		udp, err3 := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(udpPort)))
		if err := errors.Join(err, err2, err3); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go accept(sum, answer)
		go accept(echo, func(c net.Conn) { io.Copy(c, c) })
		go func() {
			buf := make([]byte, maxDatagram)
			for {
				n, from, err := udp.ReadFrom(buf)
				if err != nil {
					return
				}
				udp.WriteTo(buf[:n], from)
			}
		}()
	}
	fmt.Println("ready")
	<-stop
	return 0
}

func accept(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// answer reads all that the client sends, until it half-closes, then
// answers with the SHA-256 of it and as many bytes again, drawn from that
// sum: both directions carry a payload, and the answer needs the end of
// the question.
func answer(c net.Conn) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return
	}
	sum := h.Sum(nil)
	c.Write(sum)
	io.CopyN(c, rand.NewChaCha8([32]byte(sum)), n)
}

// roundTrip sends size random bytes to the answer server at addr, and
// checks its answer.
func roundTrip(addr string, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	question := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)}).Read(question)
	if _, err := c.Write(question); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(question)
	want := make([]byte, size)
	rand.NewChaCha8(sum).Read(want)
	want = append(sum[:], want...)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: %d bytes sent, and an answer of %d bytes that is not the one expected", addr, size, len(got))
	}
	return nil
}

// startInstance starts the servers of an instance in a network namespace
// of their own, and returns their process.
func startInstance(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), envTest+"=serve")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the instance's servers did not start: %q, %v", line, err)
	}
	return cmd
}

// spawn starts the proxy of listen and connect to inst, and stops it when
// the test ends.
func spawn(t *testing.T, inst *exec.Cmd, listen, connect string) Config {
	t.Helper()
	cfg := config(t, inst, listen, connect)
	if err := Spawn(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Stop(cfg.PidFile); err != nil {
			t.Error(err)
		}
	})
	return cfg
}

func config(t *testing.T, inst *exec.Cmd, listen, connect string) Config {
	t.Helper()
	var err error
	cfg := Config{Pid: inst.Process.Pid, PidFile: filepath.Join(t.TempDir(), "proxy.pid")}
	cfg.LogFile = cfg.PidFile + ".log"
	if cfg.Listen, err = ParseEndpoint(listen); err != nil {
		t.Fatal(err)
	}
	if cfg.Connect, err = ParseEndpoint(connect); err != nil {
		t.Fatal(err)
	}
	if cfg.PidStart, err = container.ProcStart(cfg.Pid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(cfg.LogFile)
			t.Logf("the proxy's log:\n%s", log)
		}
	})
	return cfg
}

// freeAddr returns an address of the test's loopback with a port that
// nothing listens on. A port free for TCP is free for UDP too: in the
// tests' own network namespace only they listen.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String()).String()
}

func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func pidOf(t *testing.T, pidFile string) (int, uint64) {
	t.Helper()
	pid, start, err := readPidFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	return pid, start
}

func TestTCP(t *testing.T) {
	testutil.NeedRoot(t, "makes network namespaces")
	inst := startInstance(t)
	hosts := []string{"127.0.0.1"}
	if hasIPv6() {
		hosts = append(hosts, "::1")
	} else {
		t.Log("no IPv6 here: IPv4 only")
	}
	for _, host := range hosts {
		listen := freeAddr(t, host)
		spawn(t, inst, "tcp:"+listen, "tcp:"+netip.AddrPortFrom(netip.MustParseAddr(host), sumPort).String())
		// One large transfer each way, then several at once.
		if err := roundTrip(listen, 16<<20); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = roundTrip(listen, 1<<20+i) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTCPNoServer(t *testing.T) {
	testutil.NeedRoot(t, "makes network namespaces")
	inst := startInstance(t)
	listen := freeAddr(t, "127.0.0.1")
	cfg := spawn(t, inst, "tcp:"+listen, "tcp:127.0.0.1:81")
	// The client is let in, then closed on at once; the proxy goes on.
	for range 2 {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read from a forward to nothing: %d bytes, %v; want EOF", n, err)
		}
		c.Close()
	}
	if !Running(cfg.PidFile) {
		t.Fatal("the proxy stopped")
	}
}

func TestUDP(t *testing.T) {
	testutil.NeedRoot(t, "makes network namespaces")
	inst := startInstance(t)
	listen := freeAddr(t, "127.0.0.1")
	cfg := config(t, inst, "udp:"+listen, fmt.Sprintf("udp:127.0.0.1:%d", udpPort))
	cfg.UDPIdle = time.Second
	if err := Spawn(cfg); err != nil {
		t.Fatal(err)
	}
	defer Stop(cfg.PidFile)
	pid, _ := pidOf(t, cfg.PidFile)
	if n := sockets(t, pid); n != 1 {
		t.Fatalf("%d sockets before any client, want 1", n)
	}
	// Two clients, whose datagrams interleave: each gets its own answers,
	// the largest datagram among them.
	var clients []*net.UDPConn
	for range 2 {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(listen)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	buf := make([]byte, maxDatagram+1)
	for round, size := range []int{1, 1200, maxDatagram - 28} { // less the IPv4 and UDP headers
		for i, c := range clients {
			msg := bytes.Repeat([]byte{byte('a' + i + 2*round)}, size)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d, %d bytes: %v", i, size, err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("client %d sent %d bytes of %q, and got back %d bytes of %q", i, size, msg[0], n, buf[0])
			}
		}
	}
	if n := sockets(t, pid); n != 3 {
		t.Fatalf("%d sockets with two clients, want 3", n)
	}
	// Idle, their sessions end.
	deadline := time.Now().Add(5 * time.Second)
	for sockets(t, pid) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets 5 s after the clients fell silent, want 1", sockets(t, pid))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And a client heard again gets a new one.
	if _, err := clients[0].Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	clients[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := clients[0].Read(buf); err != nil || string(buf[:n]) != "again" {
		t.Fatalf("after the session expired: %q, %v", buf[:n], err)
	}
}

// sockets counts the sockets that process pid has open.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if link, _ := os.Readlink(filepath.Join(dir, fd.Name())); strings.HasPrefix(link, "socket:") {
			n++
		}
	}
	return n
}

func TestSpawnFails(t *testing.T) {
	testutil.NeedRoot(t, "makes network namespaces")
	inst := startInstance(t)
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenUDP, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer takenUDP.Close()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	free := freeAddr(t, "127.0.0.1")
	for _, tc := range []struct {
		name, listen, connect string
		edit                  func(*Config)
		kind                  error
		msg                   string
	}{
		{name: "tcp port in use", listen: "tcp:" + taken.Addr().String(), connect: "tcp:127.0.0.1:80", kind: errkind.Busy,
			msg: "listen tcp:" + taken.Addr().String() + ": the address is already in use"},
		{name: "udp port in use", listen: "udp:" + takenUDP.LocalAddr().String(), connect: "udp:127.0.0.1:53", kind: errkind.Busy,
			msg: "listen udp:" + takenUDP.LocalAddr().String() + ": the address is already in use"},
		{name: "address not here", listen: "tcp:192.0.2.1:8080", connect: "tcp:127.0.0.1:80", kind: errkind.Invalid,
			msg: "listen tcp:192.0.2.1:8080: the address is not one of this host's"},
		{name: "protocols differ", listen: "tcp:" + free, connect: "udp:127.0.0.1:53", kind: errkind.Invalid,
			msg: "listen tcp:" + free + ", connect udp:127.0.0.1:53: both must be of one protocol"},
		{name: "init gone", listen: "tcp:" + free, connect: "tcp:127.0.0.1:80", kind: errkind.NotFound,
			edit: func(c *Config) { c.Pid, c.PidStart = gone.Process.Pid, 0 },
			msg:  fmt.Sprintf("the instance's init (process %d) is not running", gone.Process.Pid)},
		{name: "pid reused", listen: "tcp:" + free, connect: "tcp:127.0.0.1:80", kind: errkind.NotFound,
			edit: func(c *Config) { c.PidStart++ },
			msg:  fmt.Sprintf("the instance's init (process %d) is not running", inst.Process.Pid)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, inst, tc.listen, tc.connect)
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			err := Spawn(cfg)
			if !errors.Is(err, tc.kind) || err.Error() != tc.msg {
				t.Fatalf("Spawn: %v (of kind %v), want %q of kind %v", err, errkind.Of(err), tc.msg, tc.kind)
			}
			if _, err := os.Stat(cfg.PidFile); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the pid file is left behind: %v", err)
			}
			if pids := proxiesOf(t, cfg.PidFile); len(pids) > 0 {
				t.Errorf("processes %v are left behind", pids)
			}
		})
	}
	t.Run("already running", func(t *testing.T) {
		cfg := spawn(t, inst, "tcp:"+free, "tcp:127.0.0.1:80")
		cfg.Listen.Addr = netip.MustParseAddrPort(freeAddr(t, "127.0.0.1"))
		if err := Spawn(cfg); !errors.Is(err, errkind.Busy) {
			t.Fatalf("a second Spawn on one pid file: %v, want a Busy error", err)
		}
		if pids := proxiesOf(t, cfg.PidFile); len(pids) != 1 {
			t.Errorf("processes %v for one pid file", pids)
		}
	})
}

// proxiesOf lists the processes spawned as the proxy of pidFile.
func proxiesOf(t *testing.T, pidFile string) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if bytes.Contains(env, []byte("\x00"+envPidFile+"="+pidFile+"\x00")) && container.Alive(pid, mustStart(pid)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func mustStart(pid int) uint64 {
	start, _ := container.ProcStart(pid)
	return start
}

// echoProxy starts an instance and a proxy to its TCP echo server.
func echoProxy(t *testing.T) (*exec.Cmd, Config) {
	t.Helper()
	testutil.NeedRoot(t, "makes network namespaces")
	inst := startInstance(t)
	return inst, spawn(t, inst, "tcp:"+freeAddr(t, "127.0.0.1"), fmt.Sprintf("tcp:127.0.0.1:%d", echoPort))
}

func TestStop(t *testing.T) {
	_, cfg := echoProxy(t)
	listen := cfg.Listen.Addr.String()
	pid, start := pidOf(t, cfg.PidFile)
	if !Running(cfg.PidFile) {
		t.Fatal("Running: false after Spawn")
	}
	if err := Stop(cfg.PidFile); err != nil {
		t.Fatal(err)
	}
	if Running(cfg.PidFile) || container.Alive(pid, start) {
		t.Fatal("the proxy still runs after Stop")
	}
	if _, err := os.Stat(cfg.PidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the pid file after Stop: %v", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("the port after Stop: %v", err)
	}
	ln.Close()
	if err := Stop(cfg.PidFile); err != nil {
		t.Fatalf("Stop of a stopped proxy: %v", err)
	}

	// A pid file whose PID now names another process: that one lives on.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Process.Kill()
		other.Wait()
	}()
	otherStart, err := container.ProcStart(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.PidFile, fmt.Appendf(nil, "%d %d\n", other.Process.Pid, otherStart-1), 0o644); err != nil {
		t.Fatal(err)
	}
	if Running(cfg.PidFile) {
		t.Fatal("Running: true for a PID reused by another process")
	}
	if err := Stop(cfg.PidFile); err != nil {
		t.Fatal(err)
	}
	if !container.Alive(other.Process.Pid, otherStart) {
		t.Fatal("Stop killed the process that took the proxy's PID")
	}
	if _, err := os.Stat(cfg.PidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale pid file after Stop: %v", err)
	}
}

func TestInitExits(t *testing.T) {
	inst, cfg := echoProxy(t)
	listen := cfg.Listen.Addr.String()
	pid, _ := pidOf(t, cfg.PidFile)
	// With a connection open through it.
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, 1)
	inst.Process.Kill()
	inst.Wait()
	if !container.WaitExit(pid, 5*time.Second) {
		t.Fatal("the proxy still runs 5 s after the instance's init exited")
	}
	if _, err := os.Stat(cfg.PidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the pid file of a proxy that exited: %v", err)
	}
	if Running(cfg.PidFile) {
		t.Fatal("Running: true")
	}
}

// echo checks that size bytes sent on c come back, through the echo
// server.
func echo(t *testing.T, c net.Conn, size int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	sent := bytes.Repeat([]byte("x"), size)
	go c.Write(sent)
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("echo of %d bytes: %v", size, err)
	}
}

// TestMemory measures what a proxy takes, idle and with 50 connections
// open through it. Its own cost is its anonymous memory: the rest of its
// RSS is the program's text, shared with every process that runs it.
func TestMemory(t *testing.T) {
	_, cfg := echoProxy(t)
	listen := cfg.Listen.Addr.String()
	pid, _ := pidOf(t, cfg.PidFile)
	idle := memory(t, pid)
	const conns = 50
	for range conns {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echo(t, c, 64<<10)
	}
	busy := memory(t, pid)
	t.Logf("proxy memory in KiB: idle %v; with %d connections %v", idle, conns, busy)
	// Spliced in the kernel, what a connection carries costs the proxy no
	// buffer: a connection is its goroutines.
	if per := (busy["Pss_Anon"] - idle["Pss_Anon"]) / conns; per > 32 && !raceDetector {
		t.Errorf("%d KiB of anonymous memory per connection, more than 32", per)
	}
}

// memory reads the RSS, PSS and anonymous PSS of process pid, in KiB.
func memory(t *testing.T, pid int) map[string]int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if k := strings.TrimSuffix(f[0], ":"); k == "Rss" || k == "Pss" || k == "Pss_Anon" {
			m[k], _ = strconv.Atoi(f[1])
		}
	}
	if len(m) != 3 {
		t.Fatalf("smaps_rollup of %d: %q", pid, b)
	}
	return m
}
