// Package proxy forwards a port of the host to one of an instance, as the
// proxy device's default mode: a small process of its own per device,
// which listens in the network namespace it was started in and connects
// from inside the instance's, so that a service on the instance's loopback
// is reachable. The process outlives the command that spawns it, and ends
// when stopped or when the instance's init exits.
package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/runtime/container"
)

// Config is one forward, and what its process is started with.
type Config struct {
	Listen, Connect Endpoint // of one protocol
	Pid             int      // the instance's init: the proxy connects from its network namespace
	// PidStart is when init started (container.ProcStart): when set, a
	// Pid that has since been reused by another process is refused.
	PidStart uint64
	PidFile  string        // where the process records itself
	LogFile  string        // what it writes on stdout and stderr; none if empty
	UDPIdle  time.Duration // a UDP session ends after this long without a datagram; 0 is 60 s

	envErr error // what FromEnv could not read
}

// The proxy is the program that spawns it, started again with these
// variables set.
const (
	envListen   = "SILO_PROXY_LISTEN"
	envConnect  = "SILO_PROXY_CONNECT"
	envPid      = "SILO_PROXY_PID"
	envPidStart = "SILO_PROXY_PID_START"
	envPidFile  = "SILO_PROXY_PIDFILE"
	envUDPIdle  = "SILO_PROXY_UDP_IDLE"
)

func (cfg *Config) validate() error {
	switch {
	case cfg.envErr != nil:
		return cfg.envErr
	case cfg.Listen.Proto == "" || cfg.Connect.Proto == "":
		return errkind.Wrap(errkind.Invalid, "a proxy needs both listen and connect")
	case cfg.Listen.Proto != cfg.Connect.Proto:
		return errkind.Wrap(errkind.Invalid, "listen %s, connect %s: both must be of one protocol", cfg.Listen, cfg.Connect)
	case cfg.Pid <= 0:
		return errkind.Wrap(errkind.Invalid, "a proxy needs the instance's init process")
	case cfg.PidFile == "":
		return errkind.Wrap(errkind.Invalid, "a proxy needs a pid file")
	}
	return nil
}

// Spawn starts the proxy of cfg in a process of its own and returns once
// it listens, or with the reason it could not, such as an address already
// in use. A proxy that fails leaves neither a process nor a pid file.
func Spawn(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	pidFile, err := filepath.Abs(cfg.PidFile)
	if err != nil {
		return err
	}
	if Running(pidFile) {
		return errkind.Wrap(errkind.Busy, "proxy %s: already running", cfg.Listen)
	}
	var out *os.File
	if cfg.LogFile != "" {
		if out, err = os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return fmt.Errorf("proxy %s: %w", cfg.Listen, err)
		}
		defer out.Close()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	var env []string
	for _, kv := range os.Environ() {
		// A test's kill point is the command's, not the proxy's.
		if !strings.HasPrefix(kv, "SILO_PROXY_") && !strings.HasPrefix(kv, "SILO_CRASH_AT=") {
			env = append(env, kv)
		}
	}
	// One P, as the monitor has: a proxy mostly waits, and there may be
	// several per instance.
	env = append(env, envListen+"="+cfg.Listen.String(), envConnect+"="+cfg.Connect.String(),
		envPid+"="+strconv.Itoa(cfg.Pid), envPidStart+"="+strconv.FormatUint(cfg.PidStart, 10),
		envPidFile+"="+pidFile, envUDPIdle+"="+cfg.UDPIdle.String(), "GOMAXPROCS=1")
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"silo-proxy"}
	cmd.Env = env
	cmd.Dir = "/" // so as to hold no directory busy
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("proxy %s: %w", cfg.Listen, err)
	}
	report, _ := io.ReadAll(r)
	if string(report) == "ok\n" {
		// The proxy lives on, reaped here if this process outlives it
		// (silo serve), as a monitor is.
		go func() { _ = cmd.Wait() }()
		return nil
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	removePidFile(pidFile, cmd.Process.Pid)
	if len(report) == 0 {
		return fmt.Errorf("proxy %s: the process died before it listened (%v)", cfg.Listen, cmd.ProcessState)
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(report)), "error ")
	if !ok {
		return fmt.Errorf("proxy: unexpected report %q", report)
	}
	return errkind.Decode(line)
}

// FromEnv returns the config this process was spawned with, and whether
// it is a proxy at all.
func FromEnv() (Config, bool) {
	listen, ok := os.LookupEnv(envListen)
	if !ok {
		return Config{}, false
	}
	var cfg Config
	var errs []error
	var err error
	cfg.Listen, err = ParseEndpoint(listen)
	errs = append(errs, err)
	cfg.Connect, err = ParseEndpoint(os.Getenv(envConnect))
	errs = append(errs, err)
	cfg.Pid, err = strconv.Atoi(os.Getenv(envPid))
	errs = append(errs, err)
	cfg.PidStart, err = strconv.ParseUint(os.Getenv(envPidStart), 10, 64)
	errs = append(errs, err)
	cfg.UDPIdle, err = time.ParseDuration(os.Getenv(envUDPIdle))
	errs = append(errs, err)
	cfg.PidFile = os.Getenv(envPidFile)
	cfg.envErr = errors.Join(errs...)
	return cfg, true
}

// proxy is the running forward of a spawned process.
type proxy struct {
	cfg    Config
	target *target
}

// Main is the main of a proxy: it forwards until it is stopped or the
// instance's init exits, and returns the exit code. It reports to Spawn
// on file descriptor 3 once it listens, or why it could not.
func Main(cfg Config) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("listen", cfg.Listen, "connect", cfg.Connect))
	ready := os.NewFile(3, "ready")
	serve, err := start(cfg)
	if err != nil {
		fmt.Fprintf(ready, "error %s\n", errkind.Encode(err))
		ready.Close()
		slog.Error("start", "err", err)
		return 1
	}
	// Caught from before Spawn returns, so that even a Stop right after
	// it ends the proxy cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	code := 0
	select {
	case sig := <-sigs:
		slog.Info("stopped", "signal", sig)
	case err := <-serve:
		if err != nil {
			slog.Error("serve", "err", err)
			code = 1
		}
	}
	removePidFile(cfg.PidFile, os.Getpid())
	return code
}

// start listens, and records the process in its pid file. What the proxy
// serves then ends on the channel it returns, with an error or, when the
// instance's init exits, nil.
func start(cfg Config) (<-chan error, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := openTarget(cfg.Pid, cfg.PidStart)
	if err != nil {
		return nil, err
	}
	p := &proxy{cfg: cfg, target: t}
	served := make(chan error, 2)
	switch cfg.Listen.Proto {
	case "tcp":
		ln, err := net.Listen(cfg.Listen.network(), cfg.Listen.Addr.String())
		if err != nil {
			return nil, listenError(cfg.Listen, err)
		}
		go func() { served <- p.serveTCP(ln.(*net.TCPListener)) }()
	case "udp":
		ln, err := net.ListenPacket(cfg.Listen.network(), cfg.Listen.Addr.String())
		if err != nil {
			return nil, listenError(cfg.Listen, err)
		}
		go func() { served <- p.serveUDP(ln.(*net.UDPConn)) }()
	}
	if err := writePidFile(cfg.PidFile); err != nil {
		return nil, err
	}
	go func() {
		err := t.awaitExit()
		if err == nil {
			slog.Info("the instance's init exited")
		}
		served <- err
	}()
	return served, nil
}

// listenError says in one line why listening on e failed.
func listenError(e Endpoint, err error) error {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return errkind.Wrap(errkind.Busy, "listen %s: the address is already in use", e)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return errkind.Wrap(errkind.Invalid, "listen %s: the address is not one of this host's", e)
	}
	var serr *os.SyscallError
	if errors.As(err, &serr) {
		err = serr.Err
	}
	return fmt.Errorf("listen %s: %w", e, err)
}

// Stop ends the proxy that pidFile records, and removes the file. A
// proxy already gone is no error, and a PID that another process has
// taken since is left alone.
func Stop(pidFile string) error {
	pid, start, err := readPidFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := kill(pid, start); err != nil {
		return fmt.Errorf("stop proxy %d: %w", pid, err)
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// kill ends process pid, if it is the one that started at start, and
// waits until it is gone.
func kill(pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// The pidfd holds on to the process it was opened on: if that is
	// still the one of start, no signal through it can reach another.
	if !container.Alive(pid, start) {
		return nil
	}
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
		if container.WaitExit(pid, 2*time.Second) {
			return nil
		}
	}
	return errkind.Wrap(errkind.Busy, "process %d did not exit", pid)
}

// Running says whether the proxy that pidFile records runs.
func Running(pidFile string) bool {
	pid, start, err := readPidFile(pidFile)
	return err == nil && container.Alive(pid, start)
}

// A pid file holds the PID and the start time of the proxy: together they
// name it for good, since PIDs are reused.
func writePidFile(path string) error {
	pid := os.Getpid()
	start, err := container.ProcStart(pid)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", pid, start), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

func readPidFile(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(string(b), "%d %d\n", &pid, &start); err != nil {
		return 0, 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, start, nil
}

// removePidFile removes the pid file at path if it is that of process pid.
func removePidFile(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && bytes.HasPrefix(b, fmt.Appendf(nil, "%d ", pid)) {
		os.Remove(path)
	}
}
