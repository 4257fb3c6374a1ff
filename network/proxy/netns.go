package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/runtime/container"
)

// dialTimeout bounds a TCP connect inside the instance: on its loopback a
// refusal is immediate, but an address it routes elsewhere may not answer.
const dialTimeout = 10 * time.Second

// target is the instance as the proxy holds it: its init, which the proxy
// lives no longer than, and the network namespace it dials from.
type target struct {
	init  *os.File // a pidfd of init, readable once init has exited
	netns int      // the instance's network namespace
	home  int      // the proxy's own, to come back to
}

// openTarget takes hold of process pid, which must still be the one that
// started at start (0: not checked), and of its network namespace.
func openTarget(pid int, start uint64) (*target, error) {
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil, errkind.Wrap(errkind.NotFound, "the instance's init (process %d) is not running", pid)
	}
	if err != nil {
		return nil, fmt.Errorf("open process %d: %w", pid, err)
	}
	// Non-blocking, the pidfd waits in the runtime's poller, not on a thread.
	t := &target{init: os.NewFile(uintptr(pidfd), "init"), netns: -1, home: -1}
	if t.netns, err = unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		t.close()
		return nil, fmt.Errorf("the network namespace of process %d: %w", pid, err)
	}
	// Checked after the namespace is open: the pidfd pins the process, so
	// a namespace opened while it is still the one of start is its own.
	if start != 0 {
		if s, err := container.ProcStart(pid); err != nil || s != start {
			t.close()
			return nil, errkind.Wrap(errkind.NotFound, "the instance's init (process %d) is not running", pid)
		}
	}
	if t.home, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		t.close()
		return nil, fmt.Errorf("this process's network namespace: %w", err)
	}
	return t, nil
}

func (t *target) close() {
	t.init.Close()
	for _, fd := range []int{t.netns, t.home} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// dial connects to addr on network from inside the instance's network
// namespace. A socket stays in the namespace it was made in, so only its
// making needs the thread there.
func (t *target) dial(network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A namespace belongs to a thread. A thread that cannot come back
		// stays locked, so that it ends with this goroutine rather than
		// run others in the instance's namespace.
		runtime.LockOSThread()
		if err := unix.Setns(t.netns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter the instance's network namespace: %w", err)}
			return
		}
		c, err := (&net.Dialer{Timeout: dialTimeout}).Dial(network, addr)
		if unix.Setns(t.home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// awaitExit returns once the instance's init has exited.
func (t *target) awaitExit() error {
	rc, err := t.init.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
	})
}
