package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	Snapshot      string // copy this snapshot of the source, alone, rather than its head
	Pool          string // the copy's pool; the source's when empty
	KeepAddresses bool   // keep the MACs and addresses of the source's nics
	InstanceOnly  bool   // leave the source's snapshots out
}

// Copy makes dst, a new instance holding the state of src, with its
// snapshots (which keep their names, creation times and UUIDs), or of one
// of its snapshots, on a pool. With snapshots, it is an export piped into
// an import: the driver's streams, each incremental against the snapshot
// before, between pools of one driver, and differences of the trees
// between drivers. Without: within a pool a clone; between pools of one
// driver, a send and receive; between drivers, a tar stream.
func (e *Engine) Copy(ctx context.Context, src, dst string, opts CopyOptions) (*store.Instance, error) {
	if err := checkName("instance", dst); err != nil {
		return nil, err
	}
	from, err := e.instance(src)
	if err != nil {
		return nil, err
	}
	snap, pool, keepAddresses := opts.Snapshot, opts.Pool, opts.KeepAddresses
	ref, shift := storage.Ref{Volume: from.Volume}, from.Shift
	if snap != "" {
		s, err := from.Snapshot(snap)
		if err != nil {
			return nil, err
		}
		ref, shift = storage.Ref{Volume: s.Volume, Snapshot: s.ID}, s.Shift
	}
	if pool == "" {
		pool = from.Pool
	}
	srcD, srcPool, err := e.driver(ctx, from.Pool)
	if err != nil {
		return nil, err
	}
	dstD, dstPool, err := e.driver(ctx, pool)
	if err != nil {
		return nil, err
	}
	if snap == "" && !opts.InstanceOnly && len(from.Snapshots) > 0 {
		// Files shifted on disk alike go by the driver's streams as they
		// are, the copy keeping their shift; shifted otherwise, the
		// portable way, which unshifts them (Export chooses).
		return e.copyWithSnapshots(ctx, from, dst, pool, keepAddresses, srcPool.Driver == dstPool.Driver)
	}
	vol := newID("i-")
	inst := &store.Instance{Name: dst, Image: from.Image, Pool: pool, Volume: vol,
		Config: maps.Clone(from.Config), Created: time.Now().UTC(), Metadata: from.Metadata, Templates: from.Templates,
		Shift:    shift, // a clone or a driver stream keeps the files as they are; a start fits them
		Profiles: slices.Clone(from.Profiles), Devices: from.Devices.Clone()}
	if !keepAddresses {
		freshNetwork(inst)
	}
	o, err := e.journal.Begin("copy", dst, func(tx *store.Tx, rec *store.Op) error {
		if err := fitRoot(tx, inst); err != nil {
			return err
		}
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: vol}}
		if err := allocIdmap(tx, inst); err != nil {
			return err
		}
		return reserveInstance(tx, rec, dst)
	})
	if err != nil {
		return nil, err
	}
	switch {
	case srcPool.Name == dstPool.Name:
		err = srcD.CloneVolume(ctx, ref, vol)
	case srcPool.Driver == dstPool.Driver:
		err = iopipe.Run(func(w io.Writer) error { return srcD.Send(ctx, ref, "", w) },
			func(r io.Reader) error { return dstD.Receive(ctx, storage.Ref{Volume: vol}, "", r) })
	default:
		inst.Shift, err = e.copyAcross(ctx, srcD, ref, shift, dstD, inst)
	}
	if err == nil {
		err = identify(ctx, dstD, inst, image.WhenCopy)
	}
	if err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("copy %s to %s: %w", src, dst, err))
	}
	o.Step("copied")
	return inst, o.Commit(ctx, func(tx *store.Tx) error { return putNewInstance(tx, inst) })
}

// copyAcross copies ref, whose files are shifted on disk by from, into
// the new volume of inst on a pool of another driver, shifted as that
// pool needs for inst's map; it returns that shift.
func (e *Engine) copyAcross(ctx context.Context, src storage.Volumes, ref storage.Ref, from *store.Shift, dst storage.Volumes, inst *store.Instance) (*store.Shift, error) {
	root, release := "", func() error { return nil }
	var err error
	if ref.Snapshot != "" {
		root, release, err = src.OpenSnapshot(ctx, ref)
	} else {
		root, err = src.VolumePath(ctx, ref.Volume)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	dstRoot, err := dst.CreateVolume(ctx, inst.Volume)
	if err != nil {
		return nil, err
	}
	m, err := e.instanceMapOf(inst)
	if err != nil {
		return nil, err
	}
	to, err := e.diskShift(dstRoot, m)
	if err != nil {
		return nil, err
	}
	err = iopipe.Run(func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := archive.WriteTree(ctx, tw, root, "", "", idmap.Shift{From: shiftMap(from), To: shiftMap(to)}); err != nil {
			return err
		}
		return tw.Close()
	}, func(r io.Reader) error { return archive.Extract(ctx, r, dstRoot, archive.ExtractOptions{}) })
	if err != nil {
		return nil, err
	}
	return to, fsutil.SyncFS(dstRoot)
}

// copyWithSnapshots copies from, with its snapshots, to dst on pool;
// optimized sends the driver's streams.
func (e *Engine) copyWithSnapshots(ctx context.Context, from *store.Instance, dst, pool string, keepAddresses, optimized bool) (*store.Instance, error) {
	opts := ExportOptions{Compression: compression.None, Optimized: optimized, KeepShift: true}
	var inst *store.Instance
	err := iopipe.Run(func(w io.Writer) error { return e.Export(ctx, from.Name, w, opts) },
		func(r io.Reader) (err error) {
			inst, err = e.importInstance(ctx, r, dst, pool, keepAddresses, true)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", from.Name, dst, err)
	}
	return inst, nil
}
