package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/journal"
	"github.com/silo-dev/silo/internal/revert"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/runtime/monitor"
)

// DefaultStopTimeout is how long a graceful stop waits before it kills.
const DefaultStopTimeout = 30 * time.Second

// DefaultReadyTimeout is how long a wait for an instance to be ready lasts
// unless told.
const DefaultReadyTimeout = 120 * time.Second

// findOCI picks the runtime of an instance: its runtime key, else
// SILO_RUNTIME, else runc.
func (e *Engine) findOCI(cfg map[string]string) (*container.OCI, error) {
	name := cfg[KeyRuntime]
	if name == "" {
		name = os.Getenv("SILO_RUNTIME")
	}
	if name == "" {
		name = container.DefaultOCI
	}
	bin, err := container.LookupOCI(name)
	if err != nil {
		return nil, err
	}
	return e.oci(bin), nil
}

// instanceLock serializes the start and stop of one instance.
func (e *Engine) instanceLock(name string) (*os.File, error) {
	// The name becomes a path before the store is asked of it.
	if err := checkName("instance", name); err != nil {
		return nil, err
	}
	return fsutil.LockFile(e.path("locks", "instance-"+name+".lock"), syscall.LOCK_EX)
}

// Start boots instance name under its OCI runtime, with a monitor that
// outlives this command and keeps the container until it stops.
func (e *Engine) Start(ctx context.Context, name string) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	return e.start(ctx, name, false)
}

// Restart stops instance name if it runs, and starts it; an ephemeral
// instance is kept.
func (e *Engine) Restart(ctx context.Context, name string, force bool, timeout time.Duration) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	run, err := e.liveRun(name)
	if err != nil {
		return err
	}
	if run != nil {
		if err := e.stopRun(ctx, run, force, timeout, true); err != nil {
			return err
		}
	}
	return e.start(ctx, name, run != nil)
}

// start is Start under the instance's lock; restart has its boot logged as
// instance-restarted.
func (e *Engine) start(ctx context.Context, name string, restart bool) error {
	inst, run, err := e.instanceRun(name)
	if err == nil {
		err = e.store.View(func(tx *store.Tx) error { inst, err = expanded(tx, inst); return err })
	}
	if err != nil {
		return err
	}
	if run != nil {
		if live(run) {
			return errkind.Wrap(errkind.Busy, "instance %q is already running", name)
		}
		// Its monitor may still be finishing it, in the run directory
		// this start is about to make anew.
		if err := e.awaitMonitor(ctx, run); err != nil {
			return err
		}
	}
	// Held until the monitor has made the container: tidyRuns must not
	// remove the directories and cgroups that runs share meanwhile.
	runs, err := fsutil.LockFile(e.runsLock(), syscall.LOCK_SH)
	if err != nil {
		return err
	}
	defer runs.Close()
	oci, err := e.findOCI(inst.Config)
	if err != nil {
		return err
	}
	lim, err := limits(inst.Config)
	if err != nil {
		return err
	}
	d, _, err := e.driver(ctx, inst.Pool)
	if err != nil {
		return err
	}
	m, err := instanceMap(inst)
	if err != nil {
		return err
	}
	if oci.OwnKernel() {
		m = nil
		for dev, d := range inst.Devices {
			if d["type"] == DeviceNIC {
				return errkind.Wrap(errkind.Invalid, "start %s: runtime %s has no network but loopback, and the instance has nic %s: remove it (config device add %s %s none), or launch with --no-network", name, oci.Binary, dev, name, dev)
			}
			if isDisk(d) {
				return errkind.Wrap(errkind.Invalid, "start %s: runtime %s mounts no disk but the root, and the instance has disk %s: remove it", name, oci.Binary, dev)
			}
		}
	}
	root, err := e.fitShift(ctx, inst, d, m)
	if err == nil {
		err = fitQuota(ctx, inst, d)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	// A rename since the last boot shows here.
	if err := setHostname(root, name, onDisk(inst.Shift)); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if err := applyTemplates(root, inst, image.WhenStart); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if resolv, err := e.resolvConf(inst); err != nil || resolv != nil {
		if err == nil {
			err = setResolvConf(root, resolv, onDisk(inst.Shift))
		}
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	initArgs := strings.Fields(inst.Config[KeyInit])
	if len(initArgs) == 0 {
		initArgs = []string{"/sbin/init"}
	}
	kind := container.DetectInit(root, initArgs[0])
	if kind == container.Systemd {
		warnInotify()
	}
	dir := e.runDir(name)
	if err := removeRunDir(dir); err != nil {
		return err
	}
	if err := e.makeRunDir(dir, m); err != nil {
		return err
	}
	if restart {
		if err := os.WriteFile(filepath.Join(dir, restartFile), nil, 0o600); err != nil {
			return err
		}
	}
	// A start that fails leaves no run directory: no root mount, and no
	// device node of the instance's root's.
	undo := revert.New()
	defer undo.Fail()
	undo.Add(func() { _ = removeRunDir(dir) })
	rootfs, err := bootRoot(root, dir, m, inst.Shift != nil)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	cfg := container.Config{Name: name, Root: rootfs, Init: initArgs, Env: environment(inst.Config),
		Cgroup: e.cgroup(name), Limits: lim, Devices: devices(inst.Config), Idmap: m,
		NodeDir: filepath.Join(dir, "devices"), Nesting: nesting(inst.Config)}
	if err := cfg.Devices.MakeNodes(cfg.NodeDir, m); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if cfg.Nesting && privileged(inst.Config) {
		// Allowed: root of the host may mount a whole proc and sysfs
		// anyway; nesting lets it run unprivileged containers of its own.
		slog.Warn("security.nesting on a privileged instance: its root is the host's, and the whole proc and sysfs that nesting mounts in /dev/.lxc are the host's to write", "instance", name)
	}
	if kind == container.Systemd {
		cfg.Notify = filepath.Join(dir, monitor.NotifySocket)
	}
	spec, err := container.Spec(cfg)
	if err != nil {
		return err
	}
	if err := container.ForRuntime(spec, oci.Binary); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, container.BundleConfig), data, 0o600); err != nil {
		return err
	}
	journal.Crashpoint("start", "bundled")
	mcfg := monitor.Config{Name: name, StateDir: e.stateDir, Dir: dir, OCI: oci, Init: kind}
	if err := monitor.Spawn(mcfg); err != nil {
		undo.Fail()
		runs.Close()
		e.tidyRuns(name, oci.Binary)
		return fmt.Errorf("start %s: %w", name, err)
	}
	undo.Success()
	journal.Crashpoint("start", "spawned")
	e.collect(ctx, inst, d)
	return nil
}

// finishRun clears what a run that ended left: the runtime's state and
// cgroups, the run's record and directory; an ephemeral instance goes too.
// It is safe to call more than once, from the monitor or from whoever
// finds the monitor dead.
func (e *Engine) finishRun(ctx context.Context, run *store.Run) error {
	if err := e.oci(run.Runtime).Delete(ctx, run.Name); err != nil && run.Boot == bootID() {
		return fmt.Errorf("finish the run of %s: %w", run.Name, err)
	}
	// Before an ephemeral instance's volume goes.
	if err := container.ReleaseRoot(e.runDir(run.Name)); err != nil {
		return fmt.Errorf("finish the run of %s: %w", run.Name, err)
	}
	var matched, later, ephemeral, forwards bool
	var links []string
	err := e.store.Update(func(tx *store.Tx) error {
		cur, err := tx.Run(run.Name)
		if err != nil {
			return err
		}
		later = cur != nil && (cur.Pid != run.Pid || cur.Start != run.Start)
		inst, err := tx.Instance(run.Name)
		if err != nil || later {
			return err
		}
		// Read before an ephemeral instance's record goes.
		if links, forwards, err = hostTraces(tx, inst); err != nil || cur == nil {
			return err // already finished
		}
		matched = true
		if err := instanceEvent(tx, e.stopAction(run.Name), run.Name, nil); err != nil {
			return err
		}
		_, err = os.Stat(filepath.Join(e.runDir(run.Name), keepFile))
		if ephemeral = inst.Ephemeral && err != nil; ephemeral {
			return nil // the delete below clears the run in its transaction
		}
		return tx.DeleteRun(run.Name)
	})
	if err != nil && !errors.Is(err, errkind.NotFound) {
		return err
	}
	if ephemeral {
		if err := e.remove(ctx, run.Name); err != nil && !errors.Is(err, errkind.NotFound) {
			return fmt.Errorf("delete ephemeral instance %s: %w", run.Name, err)
		}
	} else if matched && err == nil {
		e.keepConsoleLog(run.Name)
	}
	if !later {
		// A later run has the same veth names and forwarders.
		e.unplugRun(run.Name, links)
	}
	if forwards {
		e.refreshNetworks(ctx) // its kernel forwards go with it
	}
	if err := removeRunDir(e.runDir(run.Name)); err != nil {
		return err
	}
	e.tidyRuns(run.Name, run.Runtime)
	return nil
}

// tidyRuns removes what the runs of this state directory share once the
// last of them is gone, unless a start is under way.
func (e *Engine) tidyRuns(name, ociBinary string) {
	lock, err := fsutil.LockFile(e.runsLock(), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return
	}
	defer lock.Close()
	_ = fsutil.RemoveIfEmpty(e.oci(ociBinary).Root)
	_ = fsutil.RemoveIfEmpty(e.runBase())
	container.RemoveCgroup(filepath.Dir(e.cgroup(name)))
}

// keepConsoleLog keeps what init wrote in its last run, for
// "console --show-log" on the stopped instance.
func (e *Engine) keepConsoleLog(name string) {
	dir := e.runDir(name)
	dst := e.consoleLog(name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return
	}
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return
	}
	for _, f := range []string{monitor.ConsoleLog + ".1", monitor.ConsoleLog} {
		if in, err := os.Open(filepath.Join(dir, f)); err == nil {
			_, _ = io.Copy(out, in)
			in.Close()
		}
	}
	if out.Close() == nil {
		_ = os.Rename(dst+".tmp", dst)
	}
}

// finishDeadRuns finishes the runs whose init has died while no monitor
// watched (the monitor was killed, or the host rebooted). Their instances
// were running when they went down, unstopped: autostart starts them.
func (e *Engine) finishDeadRuns(ctx context.Context, runs []*store.Run) {
	for _, r := range runs {
		if live(r) || monitor.Alive(e.runDir(r.Name)) {
			continue
		}
		if err := e.store.Update(func(tx *store.Tx) error {
			cur, err := tx.Run(r.Name)
			if err != nil || cur == nil || cur.Pid != r.Pid || cur.Start != r.Start {
				return err // finished meanwhile
			}
			inst, err := tx.Instance(r.Name)
			if err != nil {
				return err
			}
			inst.WasRunning = true
			return tx.PutInstance(inst)
		}); err != nil {
			slog.Warn("record that an instance went down running", "instance", r.Name, "error", err)
		}
		if err := e.finishRun(ctx, r); err != nil {
			slog.Warn("finish a run whose monitor died", "instance", r.Name, "error", err)
		}
	}
}

// Stop stops instance name: gracefully, with the signal its init takes for
// a shutdown, killing it after timeout; at once with force.
func (e *Engine) Stop(ctx context.Context, name string, force bool, timeout time.Duration) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	run, err := e.liveRun(name)
	if err != nil {
		return err
	}
	if run == nil {
		return errkind.Wrap(errkind.Busy, "instance %q is not running", name)
	}
	return e.stopRun(ctx, run, force, timeout, false)
}

// liveRun returns the run of instance name, nil when it does not run.
func (e *Engine) liveRun(name string) (*store.Run, error) {
	_, run, err := e.instanceRun(name)
	if run != nil && !live(run) {
		run = nil
	}
	return run, err
}

// instanceRun returns instance name and its run record, if it has one,
// live or not.
func (e *Engine) instanceRun(name string) (*store.Instance, *store.Run, error) {
	var inst *store.Instance
	var run *store.Run
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		if inst, err = tx.Instance(name); err != nil {
			return err
		}
		run, err = tx.Run(name)
		return err
	})
	return inst, run, err
}

// stopIfRunning stops instance name if it runs.
func (e *Engine) stopIfRunning(ctx context.Context, name string, force bool, timeout time.Duration) error {
	run, err := e.liveRun(name)
	if err != nil || run == nil {
		return err
	}
	return e.stopRun(ctx, run, force, timeout, false)
}

// Markers in a run directory. keepFile spares an ephemeral instance when
// its run ends: a restart, not a stop. shutdownFile has the end of the run
// logged as instance-shutdown, which a stop asked: without it, the run was
// killed or ended on its own, instance-stopped. restartFile has the boot
// logged as instance-restarted.
const (
	keepFile     = "keep"
	shutdownFile = "shutdown"
	restartFile  = "restart"
)

// stopAction is the lifecycle action of the end of instance name's run.
func (e *Engine) stopAction(name string) string {
	if _, err := os.Stat(filepath.Join(e.runDir(name), shutdownFile)); err == nil {
		return api.ActionInstanceShutdown
	}
	return api.ActionInstanceStopped
}

// stopRun stops a live run and waits until it is finished.
func (e *Engine) stopRun(ctx context.Context, run *store.Run, force bool, timeout time.Duration, keep bool) error {
	name := run.Name
	if keep {
		if err := os.WriteFile(filepath.Join(e.runDir(name), keepFile), nil, 0o600); err != nil {
			return err
		}
	}
	sig := container.InitKind(run.Init).StopSignal()
	if force {
		sig = syscall.SIGKILL
	} else if err := os.WriteFile(filepath.Join(e.runDir(name), shutdownFile), nil, 0o600); err != nil {
		return err
	}
	oci := e.oci(run.Runtime)
	if err := oci.Kill(ctx, name, run.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if !container.WaitExit(run.Pid, timeout) {
		slog.Info("the instance did not stop in time: killing it", "instance", name, "timeout", timeout)
		_ = oci.Kill(ctx, name, run.Pid, syscall.SIGKILL)
		if !container.WaitExit(run.Pid, 30*time.Second) {
			return fmt.Errorf("stop %s: init %d survives SIGKILL", name, run.Pid)
		}
	}
	return e.awaitMonitor(ctx, run)
}

// awaitMonitor waits for the monitor of a run whose init has exited to
// finish it, and finishes it itself if the monitor is dead.
func (e *Engine) awaitMonitor(ctx context.Context, run *store.Run) error {
	if err := monitor.Await(ctx, e.runDir(run.Name)); err != nil {
		return err
	}
	return e.finishRun(ctx, run)
}

// inotifyFloor is the fs.inotify.max_user_instances below which a host
// runs out after a few dozen systemd instances: each takes several, and
// the instances that share a range of host IDs share the limit.
const inotifyFloor = 1024

// warnInotify says, at the start of a systemd instance, when the host's
// inotify limit will stop it before long: systemd then fails in ways that
// do not name the cause.
func warnInotify() {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		return
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < inotifyFloor {
		slog.Warn("fs.inotify.max_user_instances is low for systemd instances, which take several each: raise it with sysctl fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576",
			"max_user_instances", n)
	}
}
