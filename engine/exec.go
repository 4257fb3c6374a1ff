package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/runtime/monitor"
)

// runningInstance returns instance name, expanded, and its live run, or
// says that it does not run.
func (e *Engine) runningInstance(name string) (*store.Instance, *store.Run, error) {
	var inst *store.Instance
	var run *store.Run
	err := e.store.View(func(tx *store.Tx) error {
		raw, err := tx.Instance(name)
		if err != nil {
			return err
		}
		// What it runs with: its profiles' environment too.
		if inst, err = expanded(tx, raw); err != nil {
			return err
		}
		run, err = tx.Run(name)
		return err
	})
	if err == nil && (run == nil || !live(run)) {
		err = errkind.Wrap(errkind.Busy, "instance %q is not running", name)
	}
	return inst, run, err
}

// ExecOptions describe a process to run in an instance.
type ExecOptions struct {
	TTY  bool
	Env  []string // K=V, on top of the instance's environment
	Cwd  string
	Args []string
	// UID and GID are the IDs it runs as in the instance: 0, its root.
	UID, GID uint32
}

// Exec prepares a process to run in the running instance name.
func (e *Engine) Exec(ctx context.Context, name string, o ExecOptions) (*container.Exec, error) {
	inst, run, err := e.runningInstance(name)
	if err != nil {
		return nil, err
	}
	sb, err := e.sandbox(run)
	if err != nil {
		return nil, err
	}
	env := append(append(container.BaseEnv(), environment(inst.Config)...), o.Env...)
	return &container.Exec{Init: run.Pid, Args: o.Args, Env: env, Cwd: o.Cwd, TTY: o.TTY, UID: o.UID, GID: o.GID, Sandbox: sb,
		Bundle: e.runDir(name)}, nil
}

// sandbox is the gVisor sandbox that run lives in, nil when its runtime
// runs it on the host's kernel.
func (e *Engine) sandbox(run *store.Run) (*container.Sandbox, error) {
	return e.oci(run.Runtime).Sandbox(run.Name, e.runDir(run.Name))
}

// Wait waits up to timeout for running instance name to be ready: for
// systemd, until it has booted (running or degraded); for another init,
// until a process can be run in it.
func (e *Engine) Wait(ctx context.Context, name string, timeout time.Duration) error {
	_, run, err := e.runningInstance(name)
	if err != nil {
		return err
	}
	sb, err := e.sandbox(run)
	if err != nil {
		return err
	}
	ready := filepath.Join(e.runDir(name), monitor.ReadyFile)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastTry time.Time
	var state string
	for {
		// systemd tells when it has booted over its notify socket; it is
		// asked again only now and then, in case it never tells.
		_, statErr := os.Stat(ready)
		if container.InitKind(run.Init) != container.Systemd || statErr == nil || time.Since(lastTry) > time.Second {
			lastTry = time.Now()
			ok, s, err := probeReady(ctx, run, sb, e.runDir(name))
			if ok || err != nil {
				return err
			}
			state = s
		}
		if !live(run) {
			return errkind.Wrap(errkind.Busy, "instance %q stopped while silo waited for it", name)
		}
		select {
		case <-ctx.Done():
			if state == "" {
				state = "not ready"
			}
			return errkind.Wrap(errkind.Busy, "instance %q is not ready after %s: %s", name, timeout, state)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// probeReady asks an instance once whether it is ready, and what its state
// is when not.
func probeReady(ctx context.Context, run *store.Run, sb *container.Sandbox, bundle string) (bool, string, error) {
	kind := container.InitKind(run.Init)
	args := []string{"true"}
	if kind == container.Systemd {
		args = []string{"systemctl", "is-system-running"}
	}
	x := &container.Exec{Init: run.Pid, Args: args, Env: container.BaseEnv(), Sandbox: sb, Bundle: bundle}
	var out bytes.Buffer
	err := x.Probe(ctx, &out)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return false, "", err // the probe could not be made to run at all
	}
	state := strings.TrimSpace(out.String())
	if kind != container.Systemd {
		return err == nil, "init does not take processes yet", nil
	}
	switch state {
	case "running", "degraded":
		return true, state, nil
	case "maintenance", "stopping":
		return false, state, fmt.Errorf("systemd in %s is %s", run.Name, state)
	}
	// "offline" too: systemctl says so until systemd has made /run/systemd.
	return false, "systemd is " + orNone(state), nil
}

func orNone(s string) string {
	if s == "" {
		return "not answering"
	}
	return s
}

// Console is how to reach the console of an instance: the socket to
// attach to while it runs, and the log of what init wrote, in this run or
// in the last one.
type Console struct {
	Socket string   // "" when the instance does not run
	Logs   []string // oldest first
}

// Console finds the console of instance name.
func (e *Engine) Console(ctx context.Context, name string) (*Console, error) {
	_, _, err := e.runningInstance(name)
	if errors.Is(err, errkind.Busy) {
		c := &Console{}
		if _, err := os.Stat(e.consoleLog(name)); err == nil {
			c.Logs = []string{e.consoleLog(name)}
		}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	dir := e.runDir(name)
	c := &Console{Socket: filepath.Join(dir, monitor.ConsoleSocket)}
	for _, f := range []string{monitor.ConsoleLog + ".1", monitor.ConsoleLog} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			c.Logs = append(c.Logs, filepath.Join(dir, f))
		}
	}
	return c, nil
}

// ResizeConsole sets the size of the console of running instance name, as
// a terminal's window that was resized.
func (e *Engine) ResizeConsole(ctx context.Context, name string, width, height int) error {
	if width <= 0 || height <= 0 || width > math.MaxUint16 || height > math.MaxUint16 {
		return errkind.Wrap(errkind.Invalid, "console size %dx%d: each from 1 to %d", width, height, math.MaxUint16)
	}
	_, run, err := e.runningInstance(name)
	if err != nil {
		return err
	}
	if sb, err := e.sandbox(run); err != nil || sb != nil {
		// gVisor passes its console on to init as a plain file.
		return cmp.Or(err, errkind.Wrap(errkind.Invalid, "the console of %s, a gVisor instance, has no size to set", name))
	}
	if err := container.ResizeConsole(run.Pid, width, height); err != nil {
		return fmt.Errorf("resize the console of %s: %w", name, err)
	}
	return nil
}
