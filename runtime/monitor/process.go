package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/runtime/container"
)

// Config is what a monitor is started with. It reaches the monitor in its
// environment.
type Config struct {
	Name     string // the instance, and the container's ID
	StateDir string // the state directory of the silo that started it
	Dir      string // the run directory, holding the bundle
	OCI      *container.OCI
	Init     container.InitKind
}

// The monitor is the program that spawns it, started again with these
// variables set.
const (
	envName        = "SILO_MONITOR"
	envState       = "SILO_MONITOR_STATE"
	envDir         = "SILO_MONITOR_DIR"
	envRuntime     = "SILO_MONITOR_RUNTIME"
	envRuntimeRoot = "SILO_MONITOR_RUNTIME_ROOT"
	envInit        = "SILO_MONITOR_INIT"
)

// Files the monitor process keeps in the run directory.
const (
	lockFile = "monitor.lock" // held for the monitor's life
	logFile  = "monitor.log"  // what it writes on stdout and stderr
)

// Host is what a monitor reports to: the program that runs it keeps the
// record of the run.
type Host interface {
	// Created is told init's PID each time the container is created,
	// before init runs: what the container needs from the host from its
	// first instruction (its network) is set up then. An error stops the
	// container, and on the first boot fails the start.
	Created(ctx context.Context, pid int) error
	// Started is told init's PID each time the container boots. An error
	// stops the container, and on the first boot fails the start.
	Started(pid int) error
	// Exited is told when init has exited for good and the container is
	// deleted, to finish the run.
	Exited(ctx context.Context) error
}

// Spawn starts the monitor of cfg in its own session and waits until it
// reports the container started, or why it did not.
func Spawn(cfg Config) error {
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"silo-monitor"}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILO_CRASH_AT=") { // a test's kill point is the command's, not the monitor's
			env = append(env, kv)
		}
	}
	// One P: a monitor mostly sleeps, and there is one per running
	// instance. (Measured over 20 monitors: 1.5 MiB private each against
	// 1.75 with a P per CPU; a lower GOGC or returning the heap to the
	// kernel after the start only added to that.)
	cmd.Env = append(env, envName+"="+cfg.Name, envState+"="+state, envDir+"="+cfg.Dir,
		envRuntime+"="+cfg.OCI.Binary, envRuntimeRoot+"="+cfg.OCI.Root, envInit+"="+string(cfg.Init), "GOMAXPROCS=1")
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	report, _ := io.ReadAll(r)
	msg := strings.TrimSpace(string(report))
	if msg == "ok" {
		// The monitor lives on. A command that exits first leaves it to
		// init; a process that lives longer than it (silo serve) reaps it
		// here, or keeps a zombie for every instance that stopped.
		go func() { _ = cmd.Wait() }()
		return nil
	}
	_ = cmd.Wait()
	if msg == "" {
		log, _ := os.ReadFile(filepath.Join(cfg.Dir, logFile))
		msg = "the monitor died: " + lastLine(string(log))
	}
	if rest, ok := strings.CutPrefix(msg, "error: "); ok {
		return errkind.Decode(rest)
	}
	return errors.New(msg)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// FromEnv returns the config this process was spawned with, and whether
// it is a monitor at all.
func FromEnv() (Config, bool) {
	name := os.Getenv(envName)
	return Config{
		Name:     name,
		StateDir: os.Getenv(envState),
		Dir:      os.Getenv(envDir),
		OCI:      &container.OCI{Binary: os.Getenv(envRuntime), Root: os.Getenv(envRuntimeRoot)},
		Init:     container.InitKind(os.Getenv(envInit)),
	}, name != ""
}

// Main is the main of a monitor: it keeps the container of cfg until it
// stops, telling the host newHost makes of each boot and of the end. It
// returns the exit code.
func Main(cfg Config, newHost func(Config) (Host, error)) int {
	ready := os.NewFile(3, "ready")
	fail := func(err error) int {
		if ready != nil {
			fmt.Fprintf(ready, "error: %s\n", errkind.Encode(err))
			ready.Close()
		}
		fmt.Fprintf(os.Stderr, "monitor of %s: %v\n", cfg.Name, err)
		return 1
	}
	// Held for the monitor's life: Await waits on it for the run to be
	// finished, and a free lock tells of a dead monitor.
	lock, err := fsutil.LockFile(filepath.Join(cfg.Dir, lockFile), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return fail(err)
	}
	defer lock.Close()
	host, err := newHost(cfg)
	if err != nil {
		return fail(err)
	}
	booted := false
	m := &Monitor{OCI: cfg.OCI, ID: cfg.Name, Dir: cfg.Dir, Created: host.Created, Started: func(pid int) error {
		if err := host.Started(pid); err != nil {
			return err
		}
		booted = true
		if ready != nil {
			fmt.Fprintln(ready, "ok")
			ready.Close()
			ready = nil
		}
		return nil
	}}
	// Not a command's context: the monitor must outlive its interrupts.
	ws, err := m.Run(context.Background())
	if err != nil && ready != nil {
		return fail(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "monitor of %s: %v\n", cfg.Name, err)
	}
	fmt.Fprintf(os.Stderr, "monitor of %s: init exited (%v)\n", cfg.Name, ws)
	if !booted {
		return 1
	}
	if err := host.Exited(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}

// Alive says whether a monitor holds the lock of run directory dir.
func Alive(dir string) bool {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
}

// Await waits until the monitor of run directory dir, if there is one, is
// gone: it has finished its run, or died.
func Await(ctx context.Context, dir string) error {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	for syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
