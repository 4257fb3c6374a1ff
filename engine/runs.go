package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
)

// runBase is where the runs of this state directory live: under /run, which
// a reboot empties as it ends every run, and short, for socket paths.
func (e *Engine) runBase() string {
	abs, _ := filepath.Abs(e.stateDir)
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join("/run/silo", hex.EncodeToString(sum[:6]))
}

func (e *Engine) runDir(name string) string { return filepath.Join(e.runBase(), name) }

// makeRunDir makes the run directory dir of an instance whose user
// namespace has map m (nil: the host's). The directories above it are open
// to search (0711): the runtime reaches the root and the notify socket in
// dir from inside the container's user namespace, whose root is not the
// host's. dir itself is open to that root's group alone (0710), or to no
// one but the host's root for a privileged instance: no other host user
// may reach the instance's files through its root's mount.
func (e *Engine) makeRunDir(dir string, m *idmap.Map) error {
	if err := e.makeRunBase(dir); err != nil {
		return err
	}
	if m == nil {
		return os.Chmod(dir, 0o700)
	}
	if err := os.Lchown(dir, 0, int(m.GID)); err != nil {
		return err
	}
	return os.Chmod(dir, 0o710)
}

// makeRunBase makes dir under the run base, with the directories above
// it open to search (0711).
func (e *Engine) makeRunBase(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(e.runBase()), e.runBase()} {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	return nil
}

// networkDir holds the files of network name's dnsmasq: under /run, open
// to search, as dnsmasq reads them as nobody; made anew after a reboot.
// (No instance's name starts with a dot.)
func (e *Engine) networkDir(name string) string {
	return filepath.Join(e.runBase(), ".networks", name)
}

// removeRunDir removes a run directory, once the root it may hold is
// unmounted: only then, or the instance's files would go with it.
func removeRunDir(dir string) error {
	if err := container.ReleaseRoot(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// cgroup is the cgroup of instance name, unique on the host.
func (e *Engine) cgroup(name string) string {
	return "/silo/" + filepath.Base(e.runBase()) + "/" + name
}

// oci is the OCI runtime binary: its state lives apart per binary, since
// runtimes do not read each other's.
func (e *Engine) oci(binary string) *container.OCI {
	return &container.OCI{Binary: binary, Root: filepath.Join(e.runBase(), ".oci-"+filepath.Base(binary))}
}

// live says whether the init of run r still runs.
func live(r *store.Run) bool {
	return r.Boot == bootID() && container.Alive(r.Pid, r.Start)
}

// liveRun returns the run of instance name if its init still runs. A run
// whose init died unseen (its monitor killed too) reads as no run.
func liveRun(tx *store.Tx, name string) (*store.Run, error) {
	r, err := tx.Run(name)
	if err != nil || r == nil || !live(r) {
		return nil, err
	}
	return r, nil
}

// notRunning refuses an operation on a running instance.
func notRunning(tx *store.Tx, name, what string) error {
	r, err := liveRun(tx, name)
	if err != nil {
		return err
	}
	if r != nil {
		hint := ""
		if what == "delete" || what == "restore" { // whose --force stops it first
			hint = ", or use --force"
		}
		return errkind.Wrap(errkind.Busy, "instance %q is running: stop it before you %s it%s", name, what, hint)
	}
	return nil
}

// consoleLog is where the console log of an instance's last run is kept.
func (e *Engine) consoleLog(name string) string { return e.path("logs", name+".console.log") }

// runsLock is held shared by a start until its monitor has made the
// container, and exclusive by what removes the places runs share.
func (e *Engine) runsLock() string { return e.path("locks", "runs.lock") }

// removeRunBaseIfEmpty removes the run base once nothing is left in it,
// unless a start is under way.
func (e *Engine) removeRunBaseIfEmpty() {
	lock, err := fsutil.LockFile(e.runsLock(), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return
	}
	defer lock.Close()
	_ = fsutil.RemoveIfEmpty(e.runBase())
}
