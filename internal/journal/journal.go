// Package journal records the intent of a multi-step operation in the store
// before the operation acts, and finishes or undoes, at the next start, the
// operations whose command died. It removes what an operation made or
// retired through the Cleaner its user hands it, and knows nothing of
// pools or volumes itself.
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// Cleaner removes what an operation made or retired.
type Cleaner interface {
	// Cleanup removes what c lists, skipping what is already gone.
	Cleanup(ctx context.Context, c store.Cleanup) error
}

// Journal is the record of the operations in flight in one store.
type Journal struct {
	store *store.Store
	dir   string // the lock files of the operations in flight
	clean Cleaner
}

// New returns the journal of st, keeping its operations' lock files in dir.
func New(st *store.Store, dir string, clean Cleaner) *Journal {
	return &Journal{store: st, dir: dir, clean: clean}
}

// Op is an operation in flight, recorded in the store. Its command holds
// the op's lock file for as long as it runs: a record whose lock is free
// belongs to a command that died.
type Op struct {
	j *Journal
	// Rec is the operation's record: what a caller adds to Rec.Retire,
	// from Commit's apply, is removed once the operation is committed.
	Rec  *store.Op
	lock *os.File
}

func (j *Journal) lockPath(id string) string { return filepath.Join(j.dir, id+".lock") }

// Begin records a new operation. prepare checks what the operation needs and
// fills in its reservations and undo list in the same transaction, so that
// two commands cannot both pass the same check.
func (j *Journal) Begin(kind, target string, prepare func(tx *store.Tx, rec *store.Op) error) (*Op, error) {
	id := storage.Unique()
	lock, err := fsutil.LockFile(j.lockPath(id), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return nil, err
	}
	rec := &store.Op{ID: id, Kind: kind, Target: target, Started: time.Now().UTC()}
	err = j.store.Update(func(tx *store.Tx) error {
		if err := prepare(tx, rec); err != nil {
			return err
		}
		for _, key := range rec.Reserved {
			taken, err := tx.Reserved(key)
			if err != nil {
				return err
			}
			if taken {
				return errkind.Wrap(errkind.Busy, "%s is in use by another silo command", strings.Replace(key, "/", " ", 1))
			}
		}
		return tx.PutOp(rec)
	})
	if err != nil {
		os.Remove(lock.Name())
		lock.Close()
		return nil, err
	}
	o := &Op{j: j, Rec: rec, lock: lock}
	o.Step("begun")
	return o, nil
}

// Do runs an operation whose records change in one step, before anything
// is removed: apply changes them and lists in rec.Retire what goes, and the
// operation is recorded as committed in the same transaction.
func (j *Journal) Do(ctx context.Context, kind, target string, apply func(tx *store.Tx, rec *store.Op) error) error {
	o, err := j.Begin(kind, target, func(tx *store.Tx, rec *store.Op) error {
		rec.Committed = true
		return apply(tx, rec)
	})
	if err != nil {
		return err
	}
	o.Step("committed")
	return o.finish(ctx)
}

// Step marks the end of a step: --debug logs it, and the crash-safety
// tests kill the command there.
func (o *Op) Step(name string) {
	o.debug(name)
	Crashpoint(o.Rec.Kind, name)
}

// debug logs a step of the operation's life.
func (o *Op) debug(step string) {
	slog.Debug("journal", "step", step, "operation", o.Rec.Kind, "target", o.Rec.Target, "id", o.Rec.ID)
}

// Fail undoes the operation after cause and returns cause.
func (o *Op) Fail(ctx context.Context, cause error) error {
	if err := o.RollBack(ctx); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// RollBack removes what the operation made and forgets it. If that fails,
// the record stays for a later command to try again.
func (o *Op) RollBack(ctx context.Context) error {
	if err := o.j.clean.Cleanup(context.WithoutCancel(ctx), o.Rec.Undo); err != nil {
		o.release()
		return fmt.Errorf("undo %s of %s: %w", o.Rec.Kind, o.Rec.Target, err)
	}
	o.debug("rolled back")
	return o.forget()
}

// Commit applies the operation's records, in one transaction with the mark
// that makes it final, then removes what it retired. apply may add to the
// op's Retire list.
func (o *Op) Commit(ctx context.Context, apply func(tx *store.Tx) error) error {
	err := o.j.store.Update(func(tx *store.Tx) error {
		if err := apply(tx); err != nil {
			return err
		}
		o.Rec.Committed = true
		if isEmpty(o.Rec.Retire) {
			return tx.DeleteOp(o.Rec.ID)
		}
		return tx.PutOp(o.Rec)
	})
	if err != nil {
		return o.Fail(ctx, err)
	}
	o.Step("committed")
	if isEmpty(o.Rec.Retire) {
		o.release()
		return nil
	}
	return o.finish(ctx)
}

// finish removes what a committed operation retired, then forgets it. A
// failure here does not fail the operation: it is done, and the next
// command tries the removal again.
func (o *Op) finish(ctx context.Context) error {
	if err := o.j.clean.Cleanup(context.WithoutCancel(ctx), o.Rec.Retire); err != nil {
		o.Warn("could not yet remove what the operation retired; the next silo command tries again", err)
		o.release()
		return nil
	}
	o.debug("retired removed")
	return o.forget()
}

func (o *Op) forget() error {
	err := o.j.store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteOp(o.Rec.ID); err != nil && !errors.Is(err, errkind.NotFound) {
			return err
		}
		return nil
	})
	o.release()
	return err
}

func (o *Op) release() {
	os.Remove(o.lock.Name())
	o.lock.Close()
}

// Warn logs msg about the operation, with err if there is one.
func (o *Op) Warn(msg string, err error) {
	args := []any{"operation", o.Rec.Kind, "target", o.Rec.Target}
	if err != nil {
		args = append(args, "error", err)
	}
	slog.Warn(msg, args...)
}

func isEmpty(c store.Cleanup) bool {
	return len(c.Forks) == 0 && len(c.Volumes) == 0 && len(c.Files) == 0 && c.Pool == nil && len(c.Networks) == 0 &&
		len(c.Devices) == 0 && c.Restore == nil
}

// Recover finishes or undoes each operation whose command died. It returns
// the pools in which it undid volumes: the dead commands may have left
// debris there for the caller to sweep. An operation it cannot finish or
// undo is logged, and left for the next command to try again.
func (j *Journal) Recover(ctx context.Context) ([]string, error) {
	var ops []*store.Op
	if err := j.store.View(func(tx *store.Tx) (err error) {
		ops, err = tx.Ops()
		return err
	}); err != nil {
		return nil, err
	}
	var pools []string
	seen := map[string]bool{}
	for _, rec := range ops {
		lock, err := fsutil.LockFile(j.lockPath(rec.ID), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			continue // its command is still running
		}
		// The command may have finished between our read and the lock.
		var cur *store.Op
		if err := j.store.View(func(tx *store.Tx) error {
			cur, err = tx.Op(rec.ID)
			return err
		}); err != nil {
			os.Remove(lock.Name())
			lock.Close()
			continue
		}
		o := &Op{j: j, Rec: cur, lock: lock}
		if cur.Committed {
			_ = o.finish(ctx)
			continue
		}
		if err := o.RollBack(ctx); err != nil {
			o.Warn("could not undo an interrupted operation; the next silo command tries again", err)
			continue
		}
		o.Warn("an interrupted operation was rolled back", nil)
		for _, v := range cur.Undo.Volumes {
			if !seen[v.Pool] {
				seen[v.Pool] = true
				pools = append(pools, v.Pool)
			}
		}
	}
	return pools, nil
}

// Crashpoint kills the process when SILO_CRASH_AT names this step
// ("kind/step"): the crash-safety tests stop a command at each of its steps.
func Crashpoint(kind, step string) {
	if at := os.Getenv("SILO_CRASH_AT"); at != "" && at == kind+"/"+step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
