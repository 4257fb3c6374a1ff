package engine

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/backup"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// ExportVolume writes custom volume name on pool, with its snapshots
// unless opts.InstanceOnly, as a backup stream to w: the instance backup's
// format with a type of custom. A volume that a running instance attaches
// is read from a snapshot taken for the export.
func (e *Engine) ExportVolume(ctx context.Context, pool, name string, w io.Writer, opts ExportOptions) error {
	return e.exportVolume(ctx, pool, name, "", w, opts)
}

// exportVolume is ExportVolume; with snap, it writes that snapshot alone
// as the head.
func (e *Engine) exportVolume(ctx context.Context, pool, name, snap string, w io.Writer, opts ExportOptions) error {
	if opts.Compression == "" {
		opts.Compression = compression.Zstd
	}
	if err := compression.Check(opts.Compression); err != nil {
		return err
	}
	v, d, unlock, err := e.lockedVolume(ctx, pool, name)
	if err != nil {
		return err
	}
	defer unlock()
	_, p, err := e.driver(ctx, pool)
	if err != nil {
		return err
	}
	var running []string
	if err := e.store.View(func(tx *store.Tx) (err error) { running, err = runningUsers(tx, pool, name); return err }); err != nil {
		return err
	}
	head, release := storage.Ref{Volume: v.Volume}, func() {}
	if snap != "" {
		s, err := v.Snapshot(snap)
		if err != nil {
			return err
		}
		head, running, opts.InstanceOnly = storage.Ref{Volume: s.Volume, Snapshot: s.ID}, nil, true
	}
	if len(running) > 0 && !opts.Optimized {
		if head, release, err = e.freeze(ctx, d, pool, v.Volume, volumeTarget(pool, name)); err != nil {
			return err
		}
	}
	defer release()
	snaps := v.Snapshots
	if opts.InstanceOnly {
		snaps = nil
	}
	x := &backup.Index{Type: backup.TypeCustom, Name: v.Name, Created: v.Created, Config: v.Config}
	if err := writeBackup(ctx, w, x, p.Driver, d, nil, snaps, head, nil, opts); err != nil {
		return fmt.Errorf("export volume %s: %w", name, err)
	}
	return nil
}

// ImportVolume makes custom volume name on pool from the backup stream r
// that ExportVolume wrote. It unpacks as it reads; a bad stream leaves
// nothing behind.
func (e *Engine) ImportVolume(ctx context.Context, r io.Reader, pool, name string) (*store.CustomVolume, error) {
	d, p, err := e.newVolumePool(ctx, pool, name)
	if err != nil {
		return nil, err
	}
	pool = p.Name
	im := &volumeImporter{e: e, receiver: receiver{ctx: ctx, d: d, pool: p}, name: name}
	if err := backup.Read(ctx, r, im); err != nil {
		err = fmt.Errorf("import volume %s: %w", name, err)
		if im.o == nil { // refused before anything was made
			return nil, err
		}
		return nil, im.o.Fail(ctx, err)
	}
	if im.o == nil {
		return nil, errkind.Wrap(errkind.Invalid, "import volume %s: the backup holds no volume", name)
	}
	if err := setQuota(ctx, d, volumeWhat(im.vol), pool, im.vol.Volume, volumeSize(im.vol.Config), false); err != nil {
		return nil, im.o.Fail(ctx, err)
	}
	im.o.Step("received")
	return im.vol, im.o.Commit(ctx, func(tx *store.Tx) error {
		if _, err := tx.Pool(pool); err != nil {
			return fmt.Errorf("import volume %s: the pool went meanwhile: %w", name, err)
		}
		return putNewVolume(tx, im.vol)
	})
}

// volumeImporter builds a custom volume from a backup as backup.Read
// hands it over.
type volumeImporter struct {
	e *Engine
	receiver
	name string
	vol  *store.CustomVolume
}

func (im *volumeImporter) Begin(x *backup.Index) (string, idmap.Shift, error) {
	if x.Type != backup.TypeCustom {
		return "", idmap.Shift{}, errkind.Wrap(errkind.Invalid, "the backup holds instance %q, not a custom volume: import it with silo import", x.Name)
	}
	for k, v := range x.Config {
		if err := checkVolumeConfig(k, v); err != nil {
			return "", idmap.Shift{}, fmt.Errorf("the backup's config: %w", err)
		}
	}
	if err := im.land(x, "v-"); err != nil {
		return "", idmap.Shift{}, err
	}
	v := &store.CustomVolume{Pool: im.pool.Name, Name: im.name, Volume: im.head, Retired: im.retired, Snapshots: im.snaps,
		Config: maps.Clone(x.Config), Created: x.Created}
	if v.Created.IsZero() {
		v.Created = time.Now().UTC()
	}
	o, err := im.e.journal.Begin("volume-import", volumeTarget(v.Pool, v.Name), func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = im.undo()
		return reserveVolume(tx, rec, v.Pool, v.Name)
	})
	if err != nil {
		return "", idmap.Shift{}, err
	}
	im.o, im.vol = o, v
	if x.Optimized != "" {
		return "", idmap.Shift{}, nil
	}
	root, err := im.d.CreateVolume(im.ctx, v.Volume)
	return root, idmap.Shift{}, err
}
