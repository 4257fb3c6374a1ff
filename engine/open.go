package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/journal"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// Open opens the state directory, making it on first use, and recovers
// what commands that died left unfinished.
func Open(ctx context.Context, stateDir string) (*Engine, error) {
	e, err := open(stateDir)
	if err != nil {
		return nil, err
	}
	if err := e.recover(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// open opens the state directory and recovers nothing: for a monitor,
// which finishes its own run and must not take on other commands' work.
func open(stateDir string) (*Engine, error) {
	if err := os.MkdirAll(stateDir, 0o711); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	st, err := store.Open(filepath.Join(stateDir, "silo.db"), store.DefaultTimeout)
	if err != nil {
		return nil, err
	}
	e := &Engine{stateDir: stateDir, store: st, events: events.New(st), drivers: map[string]storage.Driver{}}
	e.journal = journal.New(st, e.path("ops"), cleaner{e})
	return e, nil
}

// Recover does what Open does at the start of every command: it
// finishes or undoes the operations whose commands died, and the runs
// that ended unseen. A long-lived server calls it now and then, for the
// commands that die beside it while no other command runs.
func (e *Engine) Recover(ctx context.Context) error { return e.recover(ctx) }

// recover finishes or undoes each operation whose command died, and
// finishes the runs that ended unseen. It runs at the start of every
// command; a failure is logged, and tried again by the next command, but
// does not stop this one.
func (e *Engine) recover(ctx context.Context) error {
	swept, err := e.journal.Recover(ctx)
	if err != nil {
		return err
	}
	for _, pool := range swept {
		e.sweep(ctx, pool)
	}
	var runs []*store.Run
	if err := e.store.View(func(tx *store.Tx) (err error) {
		runs, err = tx.Runs()
		return err
	}); err != nil {
		return err
	}
	e.finishDeadRuns(ctx, runs)
	return nil
}

// Fresh returns an engine on e's state directory that shares nothing with
// e but the store: no ready driver and no pool lock. A long-lived server
// uses one per request, closed at its end, so that it holds no pool lock
// between requests and sees a pool that a command deleted and made again
// as the command left it.
func (e *Engine) Fresh() *Engine {
	f := &Engine{stateDir: e.stateDir, store: e.store, events: e.events, drivers: map[string]storage.Driver{}}
	f.journal = journal.New(e.store, e.path("ops"), cleaner{f})
	return f
}
