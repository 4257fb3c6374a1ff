package benchutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/silo-dev/silo/internal/testutil"
)

// NetNS is a network namespace: one that a benchmark made (under
// /run/netns), or an instance's. Whatever silo makes for its networks
// (bridges, nftables tables, dnsmasq) lives in the benchmark's own and
// never touches the host's network.
type NetNS struct {
	Name string // under /run/netns; empty for one that the benchmark did not make
	f    *os.File
	once sync.Once
}

// NewNetNS makes a network namespace with its loopback up. It is deleted
// by Close, and on a failure that Check reports.
func NewNetNS(prefix string) *NetNS {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		Check(fmt.Errorf("ip netns add %s: %w: %s", name, err, out))
	}
	n := &NetNS{Name: name}
	atFailure(n.Close)
	f, err := os.Open("/run/netns/" + name)
	Check(err)
	n.f = f
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		Check(fmt.Errorf("loopback up in %s: %w: %s", name, err, out))
	}
	return n
}

// OpenNetNS is the network namespace at path, such as an instance's
// /proc/PID/ns/net.
func OpenNetNS(path string) (*NetNS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &NetNS{f: f}, nil
}

// Do runs fn on a thread in the namespace: the sockets fn opens and the
// processes it starts are in it.
func (n *NetNS) Do(fn func() error) error {
	return testutil.DoInNetNS(n.f, fn)
}

// Start starts cmd in the namespace. A child inherits the namespace of the
// thread that forks it, which is cheaper than going through nsenter: its
// extra exec would add a millisecond to every command timed.
func (n *NetNS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// Run runs cmd in the namespace.
func (n *NetNS) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Output runs cmd in the namespace and returns its standard output.
func (n *NetNS) Output(cmd *exec.Cmd) ([]byte, error) {
	var out strings.Builder
	cmd.Stdout = &out
	err := n.Run(cmd)
	return []byte(out.String()), err
}

// Close kills what still runs in a namespace that the benchmark made, and
// deletes it; of another, it only closes the handle. It can be called more
// than once.
func (n *NetNS) Close() {
	n.once.Do(func() {
		if n.f != nil {
			n.f.Close()
		}
		if n.Name == "" {
			return
		}
		out, _ := exec.Command("ip", "netns", "pids", n.Name).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			log.Printf("ip netns del %s: %v: %s", n.Name, err, out)
		}
	})
}
