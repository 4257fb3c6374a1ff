package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// CreateSnapshot takes a snapshot of instance name. With no snap name it is
// called snap0, snap1 and so on.
func (e *Engine) CreateSnapshot(ctx context.Context, name, snap string) (*store.Snapshot, error) {
	if snap != "" {
		if err := checkName("snapshot", snap); err != nil {
			return nil, err
		}
	}
	_, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return nil, err
	}
	s := &store.Snapshot{ID: newID("s-")}
	o, err := e.begin("snapshot", name, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		s.Volume = inst.Volume
		s.Name = snap
		for s.Name == "" || snapshotTaken(tx, inst, s.Name) {
			if snap != "" {
				return errkind.Wrap(errkind.AlreadyExists, "snapshot %q of instance %q already exists", snap, name)
			}
			s.Name = "snap" + strconv.Itoa(inst.NextSnap)
			inst.NextSnap++
		}
		rec.Reserved = []string{store.Reservation("snapshot", name, s.Name)}
		rec.Undo.Volumes = []store.VolumeRef{snapRef(inst, s)}
		if snap == "" {
			return tx.PutInstance(inst) // the counter moved
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.CreateSnapshot(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID}); err != nil {
		return nil, o.fail(ctx, fmt.Errorf("snapshot %s: %w", name, err))
	}
	o.step("snapshotted")
	s.Created = time.Now().UTC()
	return s, o.commit(ctx, func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return fmt.Errorf("snapshot %s: the instance went meanwhile: %w", name, err)
		}
		inst.Snapshots = append(inst.Snapshots, *s)
		return tx.PutInstance(inst)
	})
}

func snapshotTaken(tx *store.Tx, inst *store.Instance, snap string) bool {
	if _, err := inst.Snapshot(snap); err == nil {
		return true
	}
	taken, err := tx.Reserved(store.Reservation("snapshot", inst.Name, snap))
	return taken || err != nil
}

// Snapshots lists the snapshots of instance name, oldest first.
func (e *Engine) Snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	inst, err := e.instance(name)
	if err != nil {
		return nil, err
	}
	return apiSnapshots(inst.Snapshots), nil
}

// RestoreSnapshot brings instance name back to snapshot snap. Every
// snapshot, older or newer, is kept: the snapshot is cloned into a new head,
// and the old head is retired. A running instance is refused, unless force:
// then it is stopped, restored and started again.
//
// Where a deleted head holds its space until its last snapshot goes anyway
// (ZFS), an old head that snapshots live in is left in place, recorded as
// retired, and deleted with its last snapshot: that saves the restore the
// cost of hiding it.
func (e *Engine) RestoreSnapshot(ctx context.Context, name, snap string, force bool) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return err
	}
	s, err := inst.Snapshot(snap)
	if err != nil {
		return err
	}
	run, err := e.liveRun(name)
	if err != nil {
		return err
	}
	if run != nil {
		if !force {
			return errkind.Wrap(errkind.Busy, "instance %q is running: stop it before you restore it, or use --force", name)
		}
		if err := e.stopRun(ctx, run, false, DefaultStopTimeout, true); err != nil {
			return err
		}
	}
	if err := e.restore(ctx, inst, d, s); err != nil {
		return err
	}
	if run != nil {
		return e.start(ctx, name)
	}
	return nil
}

// restore clones snapshot s into a new head of inst, which does not run.
func (e *Engine) restore(ctx context.Context, inst *store.Instance, d storage.Driver, s *store.Snapshot) error {
	name, snap := inst.Name, s.Name
	vol := newID("i-")
	o, err := e.begin("restore", name, func(tx *store.Tx, rec *store.Op) error {
		if err := notRunning(tx, name, "restore"); err != nil {
			return err
		}
		rec.Reserved = []string{store.Reservation("restore", name)}
		rec.Undo.Volumes = []store.VolumeRef{{Pool: inst.Pool, Volume: vol}}
		return nil
	})
	if err != nil {
		return err
	}
	if err := d.CloneVolume(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID}, vol); err != nil {
		return o.fail(ctx, fmt.Errorf("restore %s to %s: %w", name, snap, err))
	}
	o.step("cloned")
	retired := ""
	err = o.commit(ctx, func(tx *store.Tx) error {
		cur, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if cur.Volume != inst.Volume {
			return errkind.Wrap(errkind.Busy, "restore %s: another command changed the instance meanwhile", name)
		}
		if _, err := cur.Snapshot(snap); err != nil {
			return err
		}
		if _, ok := d.(headRetirer); ok && cur.SnapshotsIn(cur.Volume) > 0 {
			cur.Retired = append(cur.Retired, cur.Volume)
			retired = cur.Volume
		} else {
			o.rec.Retire.Volumes = []store.VolumeRef{{Pool: cur.Pool, Volume: cur.Volume}}
		}
		cur.Volume = vol
		return tx.PutInstance(cur)
	})
	if err == nil && retired != "" {
		// The restore is done; a head left mounted only clutters the host.
		if err := d.(headRetirer).RetireHead(ctx, retired); err != nil {
			slog.Warn("could not unmount the head the restore replaced", "instance", name, "volume", retired, "error", err)
		}
	}
	return err
}

// headRetirer is implemented by drivers whose deleted heads keep their
// space until their last snapshot goes: a head that a restore replaced is
// cheaper set aside than deleted, until then.
type headRetirer interface {
	RetireHead(ctx context.Context, vol string) error
}

// DeleteSnapshot deletes snapshot snap of instance name.
func (e *Engine) DeleteSnapshot(ctx context.Context, name, snap string) error {
	return e.do(ctx, "snapshot-delete", name+"/"+snap, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		s, err := inst.Snapshot(snap)
		if err != nil {
			return err
		}
		ref := snapRef(inst, s)
		kept := inst.Snapshots[:0]
		for _, k := range inst.Snapshots {
			if k.Name != snap {
				kept = append(kept, k)
			}
		}
		inst.Snapshots = kept
		// A retired head goes with its last snapshot, after it.
		if i := slices.Index(inst.Retired, ref.Volume); i >= 0 && inst.SnapshotsIn(ref.Volume) == 0 {
			inst.Retired = slices.Delete(inst.Retired, i, i+1)
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: inst.Pool, Volume: ref.Volume})
		}
		rec.Retire.Volumes = append(rec.Retire.Volumes, ref)
		return tx.PutInstance(inst)
	})
}
