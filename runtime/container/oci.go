package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/runcmd"
)

// DefaultOCI is the OCI runtime used unless an instance or SILO_RUNTIME
// names another.
const DefaultOCI = "runc"

// OCI runs bundles with an OCI runtime binary that takes runc's command
// line (runc, crun, youki).
type OCI struct {
	Binary string // the runtime's executable
	Root   string // where the runtime keeps its state (--root)
}

// LookupOCI finds the executable of runtime name (a name in PATH or a
// path).
func LookupOCI(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", errkind.Wrap(errkind.Unavailable,
			"OCI runtime %q not found: install it (hack/install-deps.sh installs runc) or choose another with the runtime config key", name)
	}
	return bin, nil
}

// run runs the runtime and turns a failure into an error that carries what
// the runtime said.
func (r *OCI) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, r.Binary, append(r.global(), args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := runcmd.Trace(cmd)
	err := cmd.Run()
	done(err)
	if err != nil {
		return fmt.Errorf("%s %s: %s", filepath.Base(r.Binary), args[0], explainRefusal(runtimeMessage(stderr.Bytes(), err)))
	}
	return nil
}

// global are the options the runtime takes before its command.
func (r *OCI) global() []string {
	return append([]string{"--root", r.Root, "--log-format", "json"}, flags(r.Binary)...)
}

// runtimeMessage picks the message out of what a runtime wrote on stderr
// in JSON lines: the last one says what failed.
func runtimeMessage(stderr []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var j struct{ Msg string }
	switch {
	case last == "":
		return err.Error()
	case json.Unmarshal([]byte(last), &j) == nil && j.Msg != "":
		return j.Msg
	}
	return last
}

// Create sets the container id up from bundle without starting its
// process; the runtime hands the console's master over consoleSocket and
// writes init's PID to pidFile.
func (r *OCI) Create(ctx context.Context, id, bundle, consoleSocket, pidFile string) error {
	if sandboxed(r.Binary) {
		return r.createSandbox(ctx, id, bundle, consoleSocket, pidFile)
	}
	err := r.run(ctx, "create", "--bundle", bundle, "--console-socket", consoleSocket, "--pid-file", pidFile, id)
	if err != nil && strings.Contains(err.Error(), "unable to create session key") {
		// Each container gets a session keyring, charged to the host
		// user its root is: the instances that share a range of host IDs
		// share the kernel's quota of keys per user, 200 by default.
		return errkind.Wrap(errkind.Unavailable, "%w: the host's quota of kernel keys per user is spent (kernel.keys.maxkeys, maxbytes): raise it as LXD's production set-up does, sysctl kernel.keys.maxkeys=2000 kernel.keys.maxbytes=2000000, or isolate instances (security.idmap.isolated=true)", err)
	}
	return err
}

// Start runs the process of a created container.
func (r *OCI) Start(ctx context.Context, id string) error { return r.run(ctx, "start", id) }

// Delete removes what the runtime keeps of container id (its state and
// cgroups), killing whatever is left of it. A container the runtime does
// not know is no error.
func (r *OCI) Delete(ctx context.Context, id string) error {
	if _, err := os.Stat(statePath(r.Binary, r.Root, id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return r.run(ctx, "delete", "--force", id)
}

// Kill sends sig to the init of container id, which is pid on the host.
// The init of a sandbox is no host process: its runtime delivers the
// signal, but for SIGKILL, which ends the whole sandbox at once.
func (r *OCI) Kill(ctx context.Context, id string, pid int, sig syscall.Signal) error {
	if sandboxed(r.Binary) && sig != syscall.SIGKILL {
		return r.run(ctx, "kill", id, strconv.Itoa(int(sig)))
	}
	return syscall.Kill(pid, sig)
}

// Update applies limits to running container id, whose init is pid on
// the host. A limit left at zero is lifted.
func (r *OCI) Update(ctx context.Context, id string, pid int, l Limits, allCPUs string) error {
	if sandboxed(r.Binary) {
		return updateSandbox(pid, l, allCPUs)
	}
	cpus := l.CPUs
	if cpus == "" {
		cpus = allCPUs
	}
	mem, pids := int64(-1), int64(-1)
	if l.Memory > 0 {
		mem = l.Memory
	}
	if l.Processes > 0 {
		pids = l.Processes
	}
	return r.run(ctx, "update", "--cpuset-cpus", cpus, "--memory", strconv.FormatInt(mem, 10),
		"--pids-limit", strconv.FormatInt(pids, 10), id)
}
