package benchutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/silo-dev/silo/remote"
)

// The two hosts' addresses, on the veth that joins their namespaces.
const (
	H1Addr = "198.51.100.1"
	H2Addr = "198.51.100.2"
	// H2Server is where h2 serves its API.
	H2Server = H2Addr + ":8443"
	// h1's end of the veth, whose counters are the traffic between them.
	h1Link = "rb-h1"
)

// Hosts are two silo hosts in two network namespaces joined by a veth:
// H2 serves its API on HTTPS, and H1 knows it as the remote "h2", trusted
// by a token. Nothing leaves the machine.
type Hosts struct {
	H1, H2 *Silo
	// Conf is h1's client configuration: its certificate and remotes.
	Conf string
	stop func()
}

// NewHosts makes the two hosts of silo binary bin, their state under
// work, and joins them. setup, when not nil, runs on h2 before it serves.
// Close stops h2's server and deletes the namespaces.
func NewHosts(work, bin string, setup func(h2 *Silo)) *Hosts {
	h := &Hosts{H1: NewSilo(bin, filepath.Join(work, "h1")), H2: NewSilo(bin, filepath.Join(work, "h2")),
		Conf: filepath.Join(work, "h1-conf")}
	join(h.H1.NS.Name, h.H2.NS.Name)
	if setup != nil {
		setup(h.H2)
	}
	Check(h.H2.Run("config", "set", "core.https_address", H2Server))
	h.stop = serve(h.H2)
	atFailure(h.stop)
	// h1's commands read their remotes from Conf.
	os.Setenv(remote.EnvDir, h.Conf)
	out, err := h.H2.Command("config", "trust", "add", "h1").Output()
	Check(err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	Check(h.H1.Run("remote", "add", "h2", "https://"+H2Server, "--token", lines[len(lines)-1]))
	return h
}

// Close stops h2's server; the namespaces go with each Silo's Close.
func (h *Hosts) Close() { h.stop() }

// WireBytes is what has crossed the veth between the hosts so far, both
// ways: the payload with its TCP, TLS and HTTP framing.
func (h *Hosts) WireBytes() int64 {
	out, err := exec.Command("ip", "-n", h.H1.NS.Name, "-j", "-s", "link", "show", h1Link).Output()
	Check(err)
	var links []struct {
		Stats struct {
			RX, TX struct{ Bytes int64 }
		} `json:"stats64"`
	}
	Check(json.Unmarshal(out, &links))
	if len(links) != 1 {
		Check(fmt.Errorf("ip link show %s: %d links", h1Link, len(links)))
	}
	return links[0].Stats.RX.Bytes + links[0].Stats.TX.Bytes
}

// join links the two namespaces with a veth.
func join(ns1, ns2 string) {
	for _, args := range [][]string{
		{"-n", ns1, "link", "add", h1Link, "type", "veth", "peer", "name", "rb-h2", "netns", ns2},
		{"-n", ns1, "addr", "add", H1Addr + "/24", "dev", h1Link},
		{"-n", ns1, "link", "set", h1Link, "up"},
		{"-n", ns2, "addr", "add", H2Addr + "/24", "dev", "rb-h2"},
		{"-n", ns2, "link", "set", "rb-h2", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			Check(fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out))
		}
	}
}

// serve starts silo serve on s and returns once it listens; stop ends it.
func serve(s *Silo) (stop func()) {
	cmd := s.Command("serve")
	out, err := cmd.StdoutPipe()
	Check(err)
	Check(s.NS.Start(cmd))
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "unix.socket") {
	}
	var once bool
	return func() {
		if once {
			return
		}
		once = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}
