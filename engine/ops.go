package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// op is an operation in flight, recorded in the store. Its command holds
// the op's lock file for as long as it runs: a record whose lock is free
// belongs to a command that died.
type op struct {
	e    *Engine
	rec  *store.Op
	lock *os.File
}

func (e *Engine) opLock(id string) string { return e.path("ops", id+".lock") }

// begin records a new operation. prepare checks what the operation needs and
// fills in its reservations and undo list in the same transaction, so that
// two commands cannot both pass the same check.
func (e *Engine) begin(kind, target string, prepare func(tx *store.Tx, rec *store.Op) error) (*op, error) {
	id := storage.Unique()
	lock, err := fsutil.LockFile(e.opLock(id), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return nil, err
	}
	rec := &store.Op{ID: id, Kind: kind, Target: target, Started: time.Now().UTC()}
	err = e.store.Update(func(tx *store.Tx) error {
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
	crashpoint(kind, "begun")
	return &op{e: e, rec: rec, lock: lock}, nil
}

// do runs an operation whose records change in one step, before anything
// is removed: apply changes them and lists in rec.Retire what goes, and the
// operation is recorded as committed in the same transaction.
func (e *Engine) do(ctx context.Context, kind, target string, apply func(tx *store.Tx, rec *store.Op) error) error {
	o, err := e.begin(kind, target, func(tx *store.Tx, rec *store.Op) error {
		rec.Committed = true
		return apply(tx, rec)
	})
	if err != nil {
		return err
	}
	o.step("committed")
	return o.finish(ctx)
}

// step marks the end of a step, for the crash-safety tests.
func (o *op) step(name string) { crashpoint(o.rec.Kind, name) }

// fail undoes the operation after cause and returns cause.
func (o *op) fail(ctx context.Context, cause error) error {
	if err := o.rollBack(ctx); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// rollBack removes what the operation made and forgets it. If that fails,
// the record stays for a later command to try again.
func (o *op) rollBack(ctx context.Context) error {
	if err := o.e.cleanup(context.WithoutCancel(ctx), o.rec.Undo); err != nil {
		o.release()
		return fmt.Errorf("undo %s of %s: %w", o.rec.Kind, o.rec.Target, err)
	}
	return o.forget()
}

// commit applies the operation's records, in one transaction with the mark
// that makes it final, then removes what it retired. apply may add to the
// op's Retire list.
func (o *op) commit(ctx context.Context, apply func(tx *store.Tx) error) error {
	err := o.e.store.Update(func(tx *store.Tx) error {
		if err := apply(tx); err != nil {
			return err
		}
		o.rec.Committed = true
		if isEmpty(o.rec.Retire) {
			return tx.DeleteOp(o.rec.ID)
		}
		return tx.PutOp(o.rec)
	})
	if err != nil {
		return o.fail(ctx, err)
	}
	o.step("committed")
	if isEmpty(o.rec.Retire) {
		o.release()
		return nil
	}
	return o.finish(ctx)
}

// finish removes what a committed operation retired, then forgets it. A
// failure here does not fail the operation: it is done, and the next
// command tries the removal again.
func (o *op) finish(ctx context.Context) error {
	if err := o.e.cleanup(context.WithoutCancel(ctx), o.rec.Retire); err != nil {
		logOp(o.rec, "could not yet remove what the operation retired; the next silo command tries again", err)
		o.release()
		return nil
	}
	return o.forget()
}

func (o *op) forget() error {
	err := o.e.store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteOp(o.rec.ID); err != nil && !errors.Is(err, errkind.NotFound) {
			return err
		}
		return nil
	})
	o.release()
	return err
}

func (o *op) release() {
	os.Remove(o.lock.Name())
	o.lock.Close()
}

func isEmpty(c store.Cleanup) bool {
	return len(c.Volumes) == 0 && len(c.Files) == 0 && c.Pool == nil
}

// cleanup removes what c lists, skipping what is already gone.
func (e *Engine) cleanup(ctx context.Context, c store.Cleanup) error {
	var errs []error
	for i := len(c.Volumes) - 1; i >= 0; i-- {
		ref := c.Volumes[i]
		d, err := e.volumes(ctx, ref.Pool, c.Pool)
		if errors.Is(err, errkind.NotFound) {
			continue // the pool, and so the volume, is gone
		}
		if err == nil {
			sref := storage.Ref{Volume: ref.Volume, Snapshot: ref.Snapshot}
			if ref.Snapshot != "" {
				err = d.DeleteSnapshot(ctx, sref)
			} else {
				err = d.DeleteVolume(ctx, ref.Volume)
			}
		}
		if err != nil && !errors.Is(err, errkind.NotFound) {
			errs = append(errs, fmt.Errorf("remove %s on pool %s: %w", ref.Volume, ref.Pool, err))
		}
	}
	for _, f := range c.Files {
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Pool != nil && len(errs) == 0 {
		if err := e.destroyPool(ctx, c.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// volumes returns the driver of pool name; fallback serves a pool that has
// no record (yet, or any more) in the store.
func (e *Engine) volumes(ctx context.Context, name string, fallback *store.Pool) (storage.Volumes, error) {
	d, _, err := e.driver(ctx, name)
	if errors.Is(err, errkind.NotFound) && fallback != nil && fallback.Name == name {
		return newDriver(fallback, e.stateDir)
	}
	return d, err
}

// recover finishes or undoes each operation whose command died, and
// finishes the runs that ended unseen. It runs at the start of every
// command; a failure is logged, and tried again by the next command, but
// does not stop this one.
func (e *Engine) recover(ctx context.Context) error {
	var ops []*store.Op
	var runs []*store.Run
	if err := e.store.View(func(tx *store.Tx) error {
		var err error
		if ops, err = tx.Ops(); err != nil {
			return err
		}
		runs, err = tx.Runs()
		return err
	}); err != nil {
		return err
	}
	e.recoverOps(ctx, ops)
	e.finishDeadRuns(ctx, runs)
	return nil
}

func (e *Engine) recoverOps(ctx context.Context, ops []*store.Op) {
	swept := map[string]bool{}
	for _, rec := range ops {
		lock, err := fsutil.LockFile(e.opLock(rec.ID), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			continue // its command is still running
		}
		// The command may have finished between our read and the lock.
		var cur *store.Op
		if err := e.store.View(func(tx *store.Tx) error {
			cur, err = tx.Op(rec.ID)
			return err
		}); err != nil {
			os.Remove(lock.Name())
			lock.Close()
			continue
		}
		o := &op{e: e, rec: cur, lock: lock}
		if cur.Committed {
			_ = o.finish(ctx)
			continue
		}
		if err := o.rollBack(ctx); err != nil {
			logOp(cur, "could not undo an interrupted operation; the next silo command tries again", err)
			continue
		}
		logOp(cur, "an interrupted operation was rolled back", nil)
		for _, v := range cur.Undo.Volumes {
			if !swept[v.Pool] {
				swept[v.Pool] = true
				e.sweep(ctx, v.Pool)
			}
		}
	}
}
