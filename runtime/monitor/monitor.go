// Package monitor keeps one system container for as long as it runs, in a
// process of its own that outlives the command that started it: it spawns
// that process and waits for its word, and as that process it runs the
// container, holds its console and hears its readiness. What the run means
// to silo (its record, what ends with it) is its host's business.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/runtime/container"
)

// Files of a run directory that its monitor serves.
const (
	ConsoleSocket = "console.sock" // attach here to talk to init's console
	ConsoleLog    = "console.log"  // what init wrote, the newest part
	NotifySocket  = "notify.sock"  // systemd's sd_notify, bound into the container
	ReadyFile     = "ready"        // made when systemd says it has booted
	pidFile       = "init.pid"
	handoffSocket = "handoff.sock" // the runtime hands the console's master over it
	// Past this size the console log is rotated to console.log.1.
	consoleLogMax = 1 << 20
)

// Monitor keeps one container for as long as it runs. It runs the
// runtime's create and start as a child subreaper, so that init becomes
// its child and is reaped by it; it holds the console's master, logs what
// init writes, lets clients attach, hears systemd's readiness, and returns
// when init has exited for good and the container is deleted. A reboot from
// inside boots the container again.
type Monitor struct {
	OCI *container.OCI
	ID  string
	Dir string // the run directory, holding the bundle's config.json
	// Created is told init's PID each time the container is created,
	// before init runs.
	Created func(ctx context.Context, pid int) error
	// Started is told init's PID each time the container boots.
	Started func(pid int) error

	// root is the host UID and GID of the container's root, when it has
	// a user namespace (userns).
	root   [2]int
	userns bool

	mu      sync.Mutex
	clients map[net.Conn]bool
	master  *os.File // the console of the current boot
	log     *os.File
	logSize int64
}

// Run boots the container and returns init's last wait status.
func (m *Monitor) Run(ctx context.Context) (syscall.WaitStatus, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("become a subreaper: %w", err)
	}
	attach, err := listenUnix(m.path(ConsoleSocket))
	if err != nil {
		return 0, err
	}
	defer attach.Close()
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: m.path(NotifySocket), Net: "unixgram"})
	if err != nil {
		return 0, fmt.Errorf("notify socket: %w", err)
	}
	defer notify.Close()
	if m.root[0], m.root[1], m.userns, err = container.BundleRoot(m.Dir); err != nil {
		return 0, err
	}
	// systemd sends to it as the container's root.
	if m.userns {
		if err := os.Chown(m.path(NotifySocket), m.root[0], m.root[1]); err != nil {
			return 0, fmt.Errorf("notify socket: %w", err)
		}
	}
	m.clients = map[net.Conn]bool{}
	if m.log, err = os.OpenFile(m.path(ConsoleLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return 0, err
	}
	defer m.log.Close()
	go m.serveAttach(attach)
	go m.hearNotify(notify)
	for {
		ws, err := m.boot(ctx)
		if err != nil {
			return ws, err
		}
		// A reboot from inside kills init with SIGHUP (see reboot(2) in a
		// PID namespace): the machine is wanted back.
		if !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
			return ws, nil
		}
	}
}

func (m *Monitor) path(name string) string { return filepath.Join(m.Dir, name) }

// boot creates and starts the container once, and waits for its init.
func (m *Monitor) boot(ctx context.Context) (syscall.WaitStatus, error) {
	os.Remove(m.path(ReadyFile))
	handoff, err := listenUnix(m.path(handoffSocket))
	if err != nil {
		return 0, err
	}
	console := make(chan *os.File, 1)
	go func() {
		f, err := receiveFD(handoff)
		if err != nil {
			f = nil
		}
		console <- f
	}()
	err = m.OCI.Create(ctx, m.ID, m.Dir, m.path(handoffSocket), m.path(pidFile))
	handoff.Close()
	if err != nil {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, err
	}
	master := <-console
	if master == nil {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, errors.New("the runtime handed over no console")
	}
	m.setMaster(master)
	go m.pump(master)
	defer func() {
		m.setMaster(nil)
		master.Close()
	}()
	b, err := os.ReadFile(m.path(pidFile))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, fmt.Errorf("init's PID: %w", err)
	}
	if err := m.Created(ctx, pid); err != nil {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, err
	}
	if m.userns {
		if err := container.DelegateCgroups(pid, m.root[0], m.root[1]); err != nil {
			_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
			return 0, err
		}
	}
	if err := m.OCI.Start(ctx, m.ID); err != nil {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, err
	}
	if err := m.Started(pid); err != nil {
		_ = m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
		return 0, err
	}
	ws := reap(pid)
	reapOrphans(2 * time.Second)
	return ws, m.OCI.Delete(context.WithoutCancel(ctx), m.ID)
}

func (m *Monitor) setMaster(f *os.File) {
	m.mu.Lock()
	m.master = f
	m.mu.Unlock()
}

// reap waits for init to exit, reaping whatever else is reparented to the
// monitor meanwhile, so that nothing is left a zombie.
func reap(pid int) syscall.WaitStatus {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || got == pid {
			return ws
		}
	}
}

// reapOrphans reaps, for up to timeout, the children left once init has
// exited: helpers of the runtime that it started beside init, such as
// gVisor's gofer, which exits when its sandbox has. The runtime's delete
// would wait for them, seeing them as zombies, until it gives up.
func reapOrphans(timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		got, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR) || got > 0:
		case err != nil:
			return // no child left
		default:
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func listenUnix(path string) (*net.UnixListener, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// receiveFD accepts one connection on l and reads the file descriptor
// sent over it (SCM_RIGHTS), as runc's --console-socket does.
func receiveFD(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("no file descriptor received: %w", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("no file descriptor received: %w", err)
	}
	_ = unix.IoctlSetWinsize(fds[0], unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	_ = unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), "console"), nil
}

// pump copies what init writes on its console to the log and to the
// attached clients, so that init never blocks on its console. It ends
// when the boot's console is closed.
func (m *Monitor) pump(master *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		if n > 0 {
			m.output(buf[:n])
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EIO):
			// No process has the terminal open, for now: a getty
			// hangs it up (vhangup) before it opens it again.
			time.Sleep(20 * time.Millisecond)
		default:
			return
		}
	}
}

func (m *Monitor) output(p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logSize+int64(len(p)) > consoleLogMax {
		_ = os.Rename(m.path(ConsoleLog), m.path(ConsoleLog)+".1")
		if f, err := os.OpenFile(m.path(ConsoleLog), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			m.log.Close()
			m.log, m.logSize = f, 0
		}
	}
	n, _ := m.log.Write(p)
	m.logSize += int64(n)
	for c := range m.clients {
		// A client that cannot keep up is dropped rather than stall init.
		_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write(p); err != nil {
			c.Close()
			delete(m.clients, c)
		}
	}
}

// serveAttach lets clients talk to the console: what they send goes to
// init's terminal, and what init writes goes to every client.
func (m *Monitor) serveAttach(l *net.UnixListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		m.clients[c] = true
		m.mu.Unlock()
		go func() {
			_, _ = io.Copy(consoleWriter{m}, c)
			m.mu.Lock()
			delete(m.clients, c)
			m.mu.Unlock()
			c.Close()
		}()
	}
}

// consoleWriter writes to the console of the current boot.
type consoleWriter struct{ m *Monitor }

func (w consoleWriter) Write(p []byte) (int, error) {
	m := w.m
	m.mu.Lock()
	master := m.master
	m.mu.Unlock()
	if master == nil {
		return len(p), nil // between boots: dropped
	}
	return master.Write(p)
}

// hearNotify marks the container ready when its systemd says it has booted.
func (m *Monitor) hearNotify(c *net.UnixConn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				_ = os.WriteFile(m.path(ReadyFile), nil, 0o600)
			}
		}
	}
}
