package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/btrfs"
	"github.com/silo-dev/silo/storage/dir"
	"github.com/silo-dev/silo/storage/zfs"
)

// DefaultPool is made on first use when no pool is named.
const DefaultPool = "default"

// Drivers are the storage drivers silo knows.
var Drivers = []string{"dir", "btrfs", "zfs"}

func newDriver(p *store.Pool, stateDir string) (storage.Driver, error) {
	cfg := storage.Config{ID: p.ID, Driver: p.Driver, Source: p.Source, Size: p.Size, StateDir: stateDir}
	switch p.Driver {
	case "dir":
		return dir.New(cfg)
	case "btrfs":
		return btrfs.New(cfg)
	case "zfs":
		return zfs.New(cfg)
	}
	return nil, errkind.Wrap(errkind.Invalid, "unknown storage driver %q: use one of %v", p.Driver, Drivers)
}

func (e *Engine) poolLock(p *store.Pool) string { return e.path("locks", "pool-"+p.ID+".lock") }

// driver returns the driver of the pool called name, ready for use. The
// command holds the pool's lock shared from then on, so that no sweep of
// the pool's debris runs under its feet. A pool is mounted (imported,
// swept) once per boot of the host, and again when it went away behind
// silo's back (an administrator unmounted it): its driver checks, cheaply,
// on each command's first use.
func (e *Engine) driver(ctx context.Context, name string) (storage.Driver, *store.Pool, error) {
	var p *store.Pool
	if err := e.store.View(func(tx *store.Tx) error {
		var err error
		p, err = tx.Pool(name)
		return err
	}); err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.drivers[name]; d != nil {
		return d, p, nil
	}
	d, err := newDriver(p, e.stateDir)
	if err != nil {
		return nil, nil, err
	}
	lock, err := fsutil.LockFile(e.poolLock(p), syscall.LOCK_SH)
	if err != nil {
		return nil, nil, err
	}
	if boot := bootID(); p.Boot != boot || d.Ready(ctx) != nil {
		if err := e.mountPool(ctx, d, p, lock, boot); err != nil {
			lock.Close()
			return nil, nil, err
		}
	}
	e.locks = append(e.locks, lock)
	e.drivers[name] = d
	return d, p, nil
}

// mountPool makes the pool ready after a reboot, or after it went away,
// holding its lock alone (but not the database: a zpool import can take a
// while). Only the storage silo made (a loop file, a zpool in a file, a
// directory in its state) is silo's to mount; for a source given at
// create, the error says what to bring back.
func (e *Engine) mountPool(ctx context.Context, d storage.Driver, p *store.Pool, lock *os.File, boot string) error {
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_SH)
	var cur *store.Pool
	if err := e.store.View(func(tx *store.Tx) (err error) { cur, err = tx.Pool(p.Name); return err }); err != nil {
		return err
	}
	ready := d.Ready(ctx)
	if cur.Boot == boot && ready == nil {
		return nil // another command was first
	}
	if ready != nil && p.Source != "" {
		return fmt.Errorf("pool %q is not ready: %w", p.Name, ready)
	}
	if ready != nil && cur.Boot == boot {
		slog.Warn("the pool went away behind silo's back; mounting it again", "pool", p.Name, "reason", ready)
	}
	if err := d.Mount(ctx); err != nil {
		return fmt.Errorf("make pool %s ready: %w", p.Name, err)
	}
	return e.store.Update(func(tx *store.Tx) error {
		cur, err := tx.Pool(p.Name)
		if err != nil {
			return err
		}
		cur.Boot = boot
		return tx.PutPool(cur)
	})
}

// sweep clears the debris that killed commands left in a pool (staging
// trees, open snapshot views), when no other command is using the pool.
func (e *Engine) sweep(ctx context.Context, name string) {
	d, p, err := e.driver(ctx, name)
	if err != nil {
		return
	}
	e.mu.Lock()
	i := slices.IndexFunc(e.locks, func(f *os.File) bool { return f.Name() == e.poolLock(p) })
	e.mu.Unlock()
	if i < 0 {
		return
	}
	fd := int(e.locks[i].Fd())
	// Our shared lock converts only if no other command holds one.
	if syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		if err := d.Mount(ctx); err != nil {
			slog.Warn("could not clear what interrupted commands left in the pool", "pool", name, "error", err)
		}
	}
	_ = syscall.Flock(fd, syscall.LOCK_SH)
}

// destroyPool destroys the storage of p; a pool already gone is fine.
func (e *Engine) destroyPool(ctx context.Context, p *store.Pool) error {
	d, err := newDriver(p, e.stateDir)
	if err != nil {
		return err
	}
	if err := d.Destroy(ctx); err != nil && !errors.Is(err, errkind.NotFound) {
		return fmt.Errorf("destroy pool %s: %w", p.Name, err)
	}
	os.Remove(e.poolLock(p))
	return nil
}

// CreatePool makes a pool. source is an existing directory, btrfs mount or
// zpool/dataset; with no source and a size, silo makes a loop-backed pool.
func (e *Engine) CreatePool(ctx context.Context, name, driver, source string, size int64) (*store.Pool, error) {
	if err := checkName("pool", name); err != nil {
		return nil, err
	}
	p := &store.Pool{Name: name, ID: newID(""), Driver: driver, Source: source, Size: size, Created: time.Now().UTC(), Boot: bootID()}
	d, err := newDriver(p, e.stateDir)
	if err != nil {
		return nil, err
	}
	o, err := e.journal.Begin("pool-create", name, func(tx *store.Tx, rec *store.Op) error {
		if _, err := tx.Pool(name); err == nil {
			return errkind.Wrap(errkind.AlreadyExists, "pool %q already exists", name)
		}
		rec.Reserved = []string{store.Reservation("pool", name)}
		rec.Undo.Pool = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.Create(ctx); err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("create pool %s: %w", name, err))
	}
	o.Step("created")
	return p, o.Commit(ctx, func(tx *store.Tx) error {
		if err := tx.PutPool(p); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionStoragePoolCreated, "storage-pools", name)
	})
}

// pool returns the name of the pool to use: name, or the default pool,
// which is made (a dir pool under the state directory) on first use, when
// no pool of that name exists.
func (e *Engine) pool(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = DefaultPool
	}
	if name != DefaultPool {
		return name, nil
	}
	exists := func() (ok bool) {
		_ = e.store.View(func(tx *store.Tx) error { _, err := tx.Pool(DefaultPool); ok = err == nil; return nil })
		return ok
	}
	if exists() {
		return DefaultPool, nil
	}
	lock, err := fsutil.LockFile(e.path("locks", "default-pool.lock"), syscall.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if exists() {
		return DefaultPool, nil
	}
	if _, err := e.CreatePool(ctx, DefaultPool, "dir", "", 0); err != nil {
		return "", fmt.Errorf("make the default pool: %w", err)
	}
	return DefaultPool, nil
}

// Pools lists the pools, by name.
func (e *Engine) Pools(ctx context.Context) ([]*api.StoragePool, error) {
	return listAPI(e, (*store.Tx).Pools, apiPool)
}

// Pool describes the pool called name.
func (e *Engine) Pool(ctx context.Context, name string) (*api.StoragePool, error) {
	var out *api.StoragePool
	err := e.store.View(func(tx *store.Tx) error {
		p, err := tx.Pool(name)
		if err != nil {
			return err
		}
		out, err = apiPool(tx, p)
		return err
	})
	return out, err
}

// DeletePool destroys a pool that no instance uses; the image bases it
// holds go with it.
func (e *Engine) DeletePool(ctx context.Context, name string) error {
	return e.journal.Do(ctx, "pool-delete", name, func(tx *store.Tx, rec *store.Op) error {
		p, err := tx.Pool(name)
		if err != nil {
			return err
		}
		users, err := usersOf(tx, p)
		if err != nil {
			return err
		}
		if len(users.instances) > 0 {
			return errkind.Wrap(errkind.Busy, "pool %q is in use by %d instance(s): %v", name, len(users.instances), users.instances)
		}
		if len(users.volumes) > 0 {
			return errkind.Wrap(errkind.Busy, "pool %q holds %d custom volume(s): %v: delete them first", name, len(users.volumes), users.volumes)
		}
		ops, err := tx.Ops()
		if err != nil {
			return err
		}
		for _, op := range ops {
			for _, v := range op.Undo.Volumes {
				if v.Pool == name {
					return errkind.Wrap(errkind.Busy, "pool %q is in use by a %s in progress", name, op.Kind)
				}
			}
		}
		for _, fp := range users.images {
			img, err := tx.Image(fp)
			if err != nil {
				return err
			}
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: name, Volume: img.Bases[name]})
			for _, vol := range img.Shifted[name] {
				rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: name, Volume: vol})
			}
			delete(img.Bases, name)
			delete(img.Shifted, name)
			if err := tx.PutImage(img); err != nil {
				return err
			}
		}
		rec.Retire.Pool = p
		if err := tx.DeletePool(name); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionStoragePoolDeleted, "storage-pools", name)
	})
}
