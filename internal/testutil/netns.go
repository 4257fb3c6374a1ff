package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// NetNS makes a network namespace of its own for a test, with its
// loopback up, named under /run/netns: whatever the test makes there
// (bridges, rules, dnsmasq) never touches the host's network. When the
// test ends, what still runs in it is killed and it is deleted.
func NetNS(t testing.TB) string {
	t.Helper()
	NeedRoot(t, "network namespaces")
	NeedCommand(t, "ip")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "silo-t-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up: %v: %s", err, out)
	}
	return name
}

// InNetNS runs the command argv in network namespace ns, as NetNS made it.
func InNetNS(ns string, argv ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns}, argv...)...)
	cmd.Env = os.Environ()
	return cmd
}

// DoInNetNS runs fn on an OS thread in the network namespace ns (a file
// under /run/netns, or a process's /proc/PID/ns/net, open): the sockets
// fn opens, and the processes it starts, are in it. The thread goes back
// to its own namespace before other goroutines may run on it.
func DoInNetNS(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer own.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", ns.Name(), err)
			return
		}
		errc <- fn()
		// A thread that cannot go back stays locked, and ends with the
		// goroutine.
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}
