package network

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

// Each network has its own dnsmasq, bound to its bridge alone: DHCPv4 with
// a fixed lease for every nic (static mode: addresses are silo's, and
// dnsmasq hands out no others), router advertisements for SLAAC in the
// IPv6 /64, and DNS for the instances' names, forwarding the rest to the
// host's resolvers as /etc/resolv.conf names them. It daemonizes, so that
// it outlives the silo command that started it.
//
// It runs as nobody: it faces the instances, so it must not be root, and
// the hosts files that it reads again on SIGHUP, after dropping root, are
// world-readable in a directory that others can search.

const dnsmasqBin = "/usr/sbin/dnsmasq"

// A network's dnsmasq files, in its directory.
const (
	confFile      = "dnsmasq.conf"
	pidFile       = "dnsmasq.pid"
	leasesFile    = "dnsmasq.leases"
	dhcpHostsFile = "dnsmasq.dhcp-hosts"
	hostsFile     = "dnsmasq.hosts"
	// appliedFile holds the digests of the configuration and of the hosts
	// that the running dnsmasq has loaded. It is written last, so a silo
	// that dies between rewriting a file and signalling dnsmasq leaves a
	// digest that tells the next Ensure to signal it.
	appliedFile = "dnsmasq.applied"
	dnsmasqUser = "nobody"
)

const leaseTime = "1h"

// ensureDnsmasq brings the network's dnsmasq to n: started when it is not
// running, restarted when its configuration changed, sent SIGHUP when only
// its hosts did, stopped when the network has no address to serve on.
func ensureDnsmasq(n Net) error {
	proc, running := openDnsmasq(n.Dir)
	if running {
		defer unix.Close(proc)
	}
	if !n.IPv4.IsValid() && !n.IPv6.IsValid() {
		if running { // with nothing to serve
			return stopDnsmasq(n.Dir)
		}
		return nil
	}
	group, err := nobodyGroup()
	if err != nil {
		return err
	}
	conf := dnsmasqConf(n, group)
	dhcp, hosts := dhcpHosts(n), addnHosts(n)
	applied := digest(conf) + " " + digest(dhcp+"\x00"+hosts)

	old, _ := os.ReadFile(filepath.Join(n.Dir, appliedFile))
	if running && string(old) == applied {
		return nil
	}
	for _, f := range []struct{ name, content string }{{confFile, conf}, {dhcpHostsFile, dhcp}, {hostsFile, hosts}} {
		if err := writeIfChanged(filepath.Join(n.Dir, f.name), f.content); err != nil {
			return fmt.Errorf("dnsmasq: %w", err)
		}
	}
	oldConf, _, _ := strings.Cut(string(old), " ")
	if running && oldConf == digest(conf) {
		if err := unix.PidfdSendSignal(proc, unix.SIGHUP, nil, 0); err != nil {
			return fmt.Errorf("dnsmasq: reload the hosts of bridge %s: %w", n.Bridge, err)
		}
		slog.Debug("network: dnsmasq reloaded its hosts", "network", n.Name)
	} else {
		if err := stopDnsmasq(n.Dir); err != nil {
			return err
		}
		if err := startDnsmasq(n); err != nil {
			return err
		}
		slog.Info("network: dnsmasq started", "network", n.Name, "bridge", n.Bridge)
	}
	return writeIfChanged(filepath.Join(n.Dir, appliedFile), applied)
}

func dnsmasqConf(n Net, group string) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# dnsmasq of silo network %s, written by silo", n.Name)
	line("interface=%s", n.Bridge)
	line("except-interface=lo")
	// bind-dynamic rather than bind-interfaces: it also listens on
	// addresses that come later, such as the bridge's link-local one once
	// the first nic brings its carrier up.
	line("bind-dynamic")
	line("no-hosts")
	line("strict-order")
	line("no-ping") // every address is silo's and known to be free
	line("user=%s", dnsmasqUser)
	line("group=%s", group)
	line("pid-file=%s", filepath.Join(n.Dir, pidFile))
	line("dhcp-leasefile=%s", filepath.Join(n.Dir, leasesFile))
	line("dhcp-hostsfile=%s", filepath.Join(n.Dir, dhcpHostsFile))
	line("addn-hosts=%s", filepath.Join(n.Dir, hostsFile))
	if n.Domain != "" {
		line("domain=%s", n.Domain)
		line("local=/%s/", n.Domain)
	}
	if n.IPv4.IsValid() {
		line("dhcp-range=%s,static,%s,%s", n.IPv4.Masked().Addr(), net.IP(ipNet(n.IPv4).Mask), leaseTime)
		line("dhcp-authoritative")
	}
	if n.IPv6.IsValid() {
		line("enable-ra")
		line("dhcp-range=%s,ra-stateless,64,%s", n.IPv6.Masked().Addr(), leaseTime)
	}
	return b.String()
}

// dhcpHosts is dnsmasq's dhcp-hostsfile: a fixed IPv4 lease per MAC.
func dhcpHosts(n Net) string {
	var b strings.Builder
	for _, h := range n.Hosts {
		if h.IPv4.IsValid() {
			fmt.Fprintf(&b, "%s,%s,%s\n", h.MAC, h.IPv4, h.Name)
		}
	}
	return b.String()
}

// addnHosts is dnsmasq's addn-hosts file: every address of every host,
// under NAME.DOMAIN and NAME.
func addnHosts(n Net) string {
	var b strings.Builder
	for _, h := range n.Hosts {
		names := h.Name
		if n.Domain != "" {
			names = h.Name + "." + n.Domain + " " + h.Name
		}
		for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
			if a.IsValid() {
				fmt.Fprintf(&b, "%s %s\n", a, names)
			}
		}
	}
	return b.String()
}

func startDnsmasq(n Net) error {
	// Made under the caller's umask, which may keep others out.
	if err := os.Chmod(n.Dir, 0o755); err != nil {
		return err
	}
	if err := searchableByOthers(n.Dir); err != nil {
		return err
	}
	cmd := exec.Command(dnsmasqBin, confArg(n.Dir))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// dnsmasq forks and returns once its daemon is serving, or says why not.
	if err := cmd.Run(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errkind.Wrap(errkind.Unavailable, "%s is not installed (Debian package dnsmasq-base)", dnsmasqBin)
		}
		return fmt.Errorf("start dnsmasq for bridge %s: %s: %w", n.Bridge, strings.TrimSpace(stderr.String()), err)
	}
	return nil
}

// stopDnsmasq ends every dnsmasq of dir: the one its pid file names or,
// if the file is gone or stale, any that /proc shows with dir's
// configuration. A process is only signalled once its command line shows
// that it is one.
func stopDnsmasq(dir string) error {
	var pids []int
	if pid, ok := readPid(dir); ok && isDnsmasqOf(pid, dir) {
		pids = []int{pid}
	} else {
		pids = scanDnsmasq(dir)
	}
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		// Checked again through the pidfd's process: the pid may have
		// been reused since.
		if isDnsmasqOf(pid, dir) {
			err = terminate(fd)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("stop dnsmasq %d of %s: %w", pid, dir, err)
		}
	}
	if err := os.Remove(filepath.Join(dir, pidFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// terminate sends SIGTERM to the process of pidfd, then SIGKILL if it has
// not exited in 2 s, and returns once it has.
func terminate(pidfd int) error {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); errors.Is(err, unix.ESRCH) {
			return nil
		} else if err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 2000)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			if n > 0 {
				return nil // a pidfd polls readable once its process has exited
			}
			break
		}
	}
	return errors.New("it outlived SIGKILL")
}

// openDnsmasq returns a pidfd of dir's running dnsmasq, if there is one.
func openDnsmasq(dir string) (pidfd int, ok bool) {
	pid, ok := readPid(dir)
	if !ok {
		return -1, false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, false
	}
	if !isDnsmasqOf(pid, dir) {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

func readPid(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// isDnsmasqOf tells whether process pid is a dnsmasq started for dir: its
// command line is exactly the one startDnsmasq gives.
func isDnsmasqOf(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return len(args) == 2 && filepath.Base(args[0]) == "dnsmasq" && args[1] == confArg(dir)
}

func scanDnsmasq(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && isDnsmasqOf(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func confArg(dir string) string { return "--conf-file=" + filepath.Join(dir, confFile) }

// nobodyGroup is the name of nobody's group, which dnsmasq wants by name:
// nogroup on Debian, nobody elsewhere.
var nobodyGroup = sync.OnceValues(func() (string, error) {
	u, err := user.Lookup(dnsmasqUser)
	if err != nil {
		return "", errkind.Wrap(errkind.Unavailable, "dnsmasq runs as user %s, which this host lacks: %w", dnsmasqUser, err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", errkind.Wrap(errkind.Unavailable, "group %s of user %s: %w", u.Gid, dnsmasqUser, err)
	}
	return g.Name, nil
})

// searchableByOthers checks that dnsmasq, once it is nobody, can still
// reach dir to read its hosts files again.
func searchableByOthers(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return errkind.Wrap(errkind.Invalid, "dnsmasq runs as %s and cannot reach %s: %s is mode %o, not searchable by others", dnsmasqUser, dir, d, fi.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// writeIfChanged replaces path with content, atomically, unless it holds
// that already.
func writeIfChanged(path, content string) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	// dnsmasq reads its hosts files again as nobody, whatever the umask.
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
