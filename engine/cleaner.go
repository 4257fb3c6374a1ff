package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network"
	"github.com/silo-dev/silo/storage"
)

// cleaner removes, for the journal, what an operation made or retired: on
// the engine's pools, or a pool the operation itself made or destroys.
type cleaner struct{ e *Engine }

// Cleanup removes what c lists, skipping what is already gone.
func (cl cleaner) Cleanup(ctx context.Context, c store.Cleanup) error {
	var errs []error
	for _, f := range c.Forks {
		if err := cl.e.unfork(ctx, f, c.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// The volumes hold snapshots of others until they are given back.
		return errors.Join(errs...)
	}
	for i := len(c.Volumes) - 1; i >= 0; i-- {
		ref := c.Volumes[i]
		d, err := cl.e.volumes(ctx, ref.Pool, c.Pool)
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
	// Before the records are restored: they say what to take out.
	if err := cl.e.unplugRefs(ctx, c.Devices); err != nil {
		errs = append(errs, err)
	}
	if r := c.Restore; r != nil {
		err := cl.e.store.Update(func(tx *store.Tx) error {
			for _, inst := range r.Instances {
				if err := tx.PutInstance(inst); err != nil {
					return err
				}
			}
			for _, v := range r.Volumes {
				if err := tx.PutCustomVolume(v); err != nil {
					return err
				}
			}
			if r.Profile != nil {
				return tx.PutProfile(r.Profile)
			}
			return nil
		})
		if err == nil {
			err = cl.e.refitVolumeQuotas(ctx, r.Volumes)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := cl.e.refitQuotas(ctx, c.Quotas); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.Networks {
		if err := network.Remove(ctx, n.Bridge, n.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Bridge, err))
		}
	}
	if err := cl.e.replugRefs(ctx, c.Devices); err != nil {
		errs = append(errs, err)
	}
	for _, f := range c.Files {
		if err := os.RemoveAll(f); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Pool != nil && len(errs) == 0 {
		if err := cl.e.destroyPool(ctx, c.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unfork undoes f, on f's pool or on fallback (see volumes).
func (e *Engine) unfork(ctx context.Context, f store.Fork, fallback *store.Pool) error {
	d, err := e.volumes(ctx, f.Pool, fallback)
	if errors.Is(err, errkind.NotFound) {
		return nil // the pool, and so the volumes, are gone
	}
	if err != nil {
		return err
	}
	if fk, ok := d.(forker); ok {
		err = fk.Unfork(ctx, f.Volume, f.From)
	}
	if err != nil {
		return fmt.Errorf("give %s back its snapshots on pool %s: %w", f.From, f.Pool, err)
	}
	return nil
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
