// Package engine carries out what users ask of silo: pools, images,
// instances, snapshots, copies and files. It records the intent of every
// multi-step operation in the store before it touches storage, so that a
// command killed at any point leaves work that the next command finishes or
// undoes.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// DefaultStateDir is where silo keeps its state unless told otherwise.
const DefaultStateDir = "/var/lib/silo"

// Engine is silo's state directory opened by one command.
type Engine struct {
	stateDir string
	store    *store.Store

	mu      sync.Mutex
	drivers map[string]storage.Driver // ready drivers, by pool name
	locks   []*os.File                // pool locks held until Close
}

// Open opens the state directory, making it on first use, and recovers
// what commands that died left unfinished.
func Open(ctx context.Context, stateDir string) (*Engine, error) {
	if err := os.MkdirAll(stateDir, 0o711); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	st, err := store.Open(filepath.Join(stateDir, "silo.db"), store.DefaultTimeout)
	if err != nil {
		return nil, err
	}
	e := &Engine{stateDir: stateDir, store: st, drivers: map[string]storage.Driver{}}
	if err := e.recover(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Close releases the pool locks the engine holds.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.locks {
		f.Close()
	}
	e.locks = nil
	return nil
}

func (e *Engine) path(parts ...string) string {
	return filepath.Join(append([]string{e.stateDir}, parts...)...)
}

// crashpoint kills the process when SILO_CRASH_AT names this step
// ("kind/step"): the crash-safety tests stop a command at each of its steps.
func crashpoint(kind, step string) {
	if at := os.Getenv("SILO_CRASH_AT"); at != "" && at == kind+"/"+step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// bootID identifies this boot of the host: a pool made ready under it
// needs no mount or import until the next reboot, and a run recorded under
// another boot has ended. Read once: every running instance asks.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

func logOp(op *store.Op, msg string, err error) {
	args := []any{"operation", op.Kind, "target", op.Target}
	if err != nil {
		args = append(args, "error", err)
	}
	slog.Warn(msg, args...)
}
