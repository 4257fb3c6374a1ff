// The fallback for pools whose filesystem cannot be idmapped (zfs-fuse):
// an unprivileged instance's volume carries its host IDs on disk. Its
// image base is shifted once per pool and map, so that instances are
// still clones; a volume whose map changes (a switch to or from
// privileged, a new isolated range) is shifted at its next start.

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/idshift"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// diskShift is the shift that a volume of an instance booting under m
// must carry on disk, where path lies on its pool: none where the
// filesystem can be idmapped or the instance is privileged (m nil).
func (e *Engine) diskShift(path string, m *idmap.Map) (*store.Shift, error) {
	if m == nil {
		return nil, nil
	}
	ok, err := e.canIdmap(path)
	if err != nil || ok {
		return nil, err
	}
	return shiftRecord(m), nil
}

// cloneBase returns the volume that a new instance under map m is cloned
// from on pool: the image's base (made if need be when base is empty),
// or where the pool cannot idmap, its shifted base for m (made if need
// be). shift is what the clone carries.
func (e *Engine) cloneBase(ctx context.Context, d storage.Volumes, pool, fp, base string, m *idmap.Map) (vol string, shift *store.Shift, err error) {
	if base == "" {
		if base, err = e.base(ctx, pool, fp); err != nil {
			return "", nil, err
		}
	}
	if m == nil {
		return base, nil, nil
	}
	path, err := d.VolumePath(ctx, base)
	if err != nil {
		return "", nil, err
	}
	if shift, err = e.diskShift(path, m); err != nil || shift == nil {
		return base, nil, err
	}
	vol, err = e.shiftedBase(ctx, d, pool, fp, base, shift)
	return vol, shift, err
}

// shiftedBase returns the ID of the clone of the image's base volume on
// pool whose owners are shifted by s, making it if it is not there yet:
// a clone, a walk over it, and a seal. One command makes it while the
// others wait.
func (e *Engine) shiftedBase(ctx context.Context, d storage.Volumes, pool, fp, base string, s *store.Shift) (string, error) {
	find := func() (vol string, err error) {
		err = e.store.View(func(tx *store.Tx) error {
			img, err := tx.Image(fp)
			if err == nil {
				vol = img.Shifted[pool][s.Key()]
			}
			return err
		})
		return
	}
	lock, err := fsutil.LockFile(e.path("locks", "shift-"+fp+".lock"), syscall.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	vol, err := find()
	if err != nil || vol != "" {
		return vol, err
	}
	vol = newID("img-")
	o, err := e.journal.Begin("image-shift", fp, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: vol}}
		return nil
	})
	if err != nil {
		return "", err
	}
	began := time.Now()
	if err := shiftClone(ctx, d, storage.Ref{Volume: base}, vol, onDisk(s)); err != nil {
		return "", o.Fail(ctx, fmt.Errorf("shift image %.12s on pool %s: %w", fp, pool, err))
	}
	if err := d.SealVolume(ctx, vol); err != nil {
		return "", o.Fail(ctx, fmt.Errorf("shift image %.12s on pool %s: %w", fp, pool, err))
	}
	slog.Info("shifted an image base for a map, once for this pool", "image", fp[:12], "pool", pool, "map", s.Key(), "took", time.Since(began))
	o.Step("shifted")
	return vol, o.Commit(ctx, func(tx *store.Tx) error {
		img, err := tx.Image(fp)
		if err != nil {
			return err
		}
		if img.Shifted == nil {
			img.Shifted = map[string]map[string]string{}
		}
		if img.Shifted[pool] == nil {
			img.Shifted[pool] = map[string]string{}
		}
		img.Shifted[pool][s.Key()] = vol
		return tx.PutImage(img)
	})
}

// shiftClone makes vol, a clone of src with its owners shifted by s.
func shiftClone(ctx context.Context, d storage.Volumes, src storage.Ref, vol string, s idmap.Shift) error {
	if err := d.CloneVolume(ctx, src, vol); err != nil {
		return err
	}
	root, err := d.VolumePath(ctx, vol)
	if err != nil {
		return err
	}
	if err := idshift.Tree(ctx, root, s); err != nil {
		return err
	}
	return fsutil.SyncFS(root)
}

// fitShift makes the head of inst, which does not run, carry the shift
// that booting under m needs on disk, and returns its root. A head that
// carries another (the instance switched between privileged and
// unprivileged, or its isolated range changed) is replaced by a clone of
// it shifted by a walk over the tree: it costs what the image's base
// shift costs, and the old head is retired as a restore retires it.
func (e *Engine) fitShift(ctx context.Context, inst *store.Instance, d storage.Driver, m *idmap.Map) (string, error) {
	root, err := d.VolumePath(ctx, inst.Volume)
	if err != nil {
		return "", err
	}
	want, err := e.diskShift(root, m)
	if err != nil {
		return "", err
	}
	s := idmap.Shift{From: shiftMap(inst.Shift), To: shiftMap(want)}
	if s.None() {
		return root, nil
	}
	vol := newID("i-")
	o, err := e.journal.Begin("shift", inst.Name, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = []store.VolumeRef{{Pool: inst.Pool, Volume: vol}}
		return nil
	})
	if err != nil {
		return "", err
	}
	began := time.Now()
	if err := shiftClone(ctx, d, storage.Ref{Volume: inst.Volume}, vol, s); err != nil {
		return "", o.Fail(ctx, fmt.Errorf("shift the files of %s for its map: %w", inst.Name, err))
	}
	slog.Info("shifted an instance's files for its new map", "instance", inst.Name, "took", time.Since(began))
	o.Step("shifted")
	err = o.Commit(ctx, func(tx *store.Tx) error {
		cur, err := tx.Instance(inst.Name)
		if err != nil {
			return err
		}
		if cur.Volume != inst.Volume {
			return errkind.Wrap(errkind.Busy, "shift %s: another command changed the instance meanwhile", inst.Name)
		}
		cur.Retired = append(cur.Retired, cur.Volume)
		cur.Volume, cur.Shift = vol, want
		*inst = *cur
		return tx.PutInstance(cur)
	})
	if err != nil {
		return "", err
	}
	return d.VolumePath(ctx, vol)
}
