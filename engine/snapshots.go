package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// SnapshotOptions are the choices of a new snapshot, as lxc's.
type SnapshotOptions struct {
	// Name is the snapshot's; "" names it by snapshots.pattern, or snap0,
	// snap1 and so on when that is unset.
	Name string
	// Expiry keeps it for this long (snapshots.expiry's syntax: 2d, 1w
	// 3d...) in place of snapshots.expiry; NoExpiry keeps it for good.
	Expiry   string
	NoExpiry bool
	// ExpiresAt, when not zero, is the expiry itself, as the API gives it.
	ExpiresAt time.Time
	// At is when it is taken, which the pattern's creation_date and the
	// expiry count from; zero is now. The background pass gives its clock.
	At time.Time
	// scheduled is the background pass's: the commit records At as the
	// time of the owner's last scheduled snapshot.
	scheduled bool
}

// check checks the options before anything is done.
func (o *SnapshotOptions) check() error {
	if o.Name != "" {
		if err := checkName("snapshot", o.Name); err != nil {
			return err
		}
	}
	if o.Expiry != "" && o.NoExpiry {
		return errkind.Wrap(errkind.Invalid, "give --expiry or --no-expiry, not both")
	}
	if !o.ExpiresAt.IsZero() && (o.Expiry != "" || o.NoExpiry) {
		return errkind.Wrap(errkind.Invalid, "give an expiry or expires_at, not both")
	}
	if o.At.IsZero() {
		o.At = time.Now()
	}
	_, err := snapshot.Expiry(o.Expiry, o.At)
	return err
}

// prepare names s and gives it its expiry, for an owner (what, in
// messages) with config cfg, snapshots snaps and counter next; taken
// tells a name in use, or being taken, by another command.
func (o SnapshotOptions) prepare(s *store.Snapshot, what string, cfg map[string]string, snaps []store.Snapshot, next *int, taken func(string) bool) error {
	var err error
	switch {
	case !o.ExpiresAt.IsZero():
		s.Expires = o.ExpiresAt.UTC()
	case !o.NoExpiry:
		expiry := o.Expiry
		if expiry == "" {
			expiry = cfg[KeySnapExpiry]
		}
		if s.Expires, err = snapshot.Expiry(expiry, o.At); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	switch {
	case o.Name != "":
		s.Name = o.Name
	case cfg[KeySnapPattern] != "":
		names := make([]string, len(snaps))
		for i, k := range snaps {
			names[i] = k.Name
		}
		if s.Name, err = snapshot.Name(cfg[KeySnapPattern], o.At, names); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := checkName("snapshot", s.Name); err != nil {
			return fmt.Errorf("%s: %s: %w", what, KeySnapPattern, err)
		}
	default:
		// LXD's default pattern, snap%d, by a counter: no number is reused.
		for s.Name == "" || taken(s.Name) {
			s.Name = "snap" + strconv.Itoa(*next)
			*next++
		}
	}
	if taken(s.Name) {
		return errkind.Wrap(errkind.AlreadyExists, "snapshot %q of %s already exists", s.Name, what)
	}
	return nil
}

// CreateSnapshot takes a snapshot of instance name.
func (e *Engine) CreateSnapshot(ctx context.Context, name string, opts SnapshotOptions) (*store.Snapshot, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	_, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return nil, err
	}
	s := &store.Snapshot{ID: newID("s-"), UUID: newUUID()}
	o, err := e.journal.Begin("snapshot", name, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		cfg, _, err := expand(tx, inst)
		if err != nil {
			return err
		}
		s.Volume, s.Shift = inst.Volume, inst.Shift
		taken := func(snap string) bool { return snapshotTaken(tx, inst, snap) }
		if err := opts.prepare(s, "instance "+strconv.Quote(name), cfg, inst.Snapshots, &inst.NextSnap, taken); err != nil {
			return err
		}
		rec.Reserved = []string{store.Reservation("snapshot", name, s.Name)}
		rec.Undo.Volumes = []store.VolumeRef{snapRef(inst, s)}
		return tx.PutInstance(inst) // the counter may have moved
	})
	if err != nil {
		return nil, err
	}
	if err := d.CreateSnapshot(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID}); err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("snapshot %s: %w", name, err))
	}
	o.Step("snapshotted")
	s.Created = time.Now().UTC()
	return s, o.Commit(ctx, func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return fmt.Errorf("snapshot %s: the instance went meanwhile: %w", name, err)
		}
		inst.Snapshots = append(inst.Snapshots, *s)
		if opts.scheduled {
			inst.ScheduledAt = opts.At
		}
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return snapshotEvent(tx, api.ActionInstanceSnapshotCreated, name, s.Name)
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

// SnapshotStreamID is the driver's name for the point in time snapshot
// snap of instance name holds (see streamIDer); empty on a driver whose
// streams name none. A refresh from another host sends the driver's
// incremental streams only onto a snapshot whose ID is the source's.
func (e *Engine) SnapshotStreamID(ctx context.Context, name, snap string) (string, error) {
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return "", err
	}
	s, err := inst.Snapshot(snap)
	if err != nil {
		return "", err
	}
	sd, ok := d.(streamIDer)
	if !ok {
		return "", nil
	}
	return sd.StreamID(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID})
}

// RestoreSnapshot brings instance name back to snapshot snap. Every
// snapshot, older or newer, is kept: the snapshot is cloned into a new head,
// and the old head is retired, to be collected later (see collect), so that
// a restore is one clone. A running instance is refused, unless force: then
// it is stopped, restored and started again.
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
		return e.start(ctx, name, false)
	}
	return nil
}

// restore clones snapshot s into a new head of inst, which does not run.
// It deletes nothing: the old head is recorded as retired in the same
// commit that makes the clone the head.
func (e *Engine) restore(ctx context.Context, inst *store.Instance, d storage.Driver, s *store.Snapshot) error {
	name, snap := inst.Name, s.Name
	vol := newID("i-")
	o, err := e.journal.Begin("restore", name, func(tx *store.Tx, rec *store.Op) error {
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
		return o.Fail(ctx, fmt.Errorf("restore %s to %s: %w", name, snap, err))
	}
	o.Step("cloned")
	err = o.Commit(ctx, func(tx *store.Tx) error {
		cur, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if cur.Volume != inst.Volume {
			return errkind.Wrap(errkind.Busy, "restore %s: another command changed the instance meanwhile", name)
		}
		chosen, err := cur.Snapshot(snap)
		if err != nil {
			return err
		}
		t, _, err := snapshot.Restore(tree(cur), snap, vol)
		if err != nil {
			return err
		}
		setTree(cur, t)
		cur.Shift = chosen.Shift // the clone's files are as the snapshot's
		if err := tx.PutInstance(cur); err != nil {
			return err
		}
		return instanceEvent(tx, api.ActionInstanceRestored, name, map[string]any{"snapshot": snap})
	})
	if err == nil {
		retireHead(ctx, d, name, inst.Volume)
	}
	return err
}

// DeleteSnapshot deletes snapshot snap of instance name, and the heads that
// restores retired and that may go with it.
func (e *Engine) DeleteSnapshot(ctx context.Context, name, snap string) error {
	_, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return err
	}
	return e.journal.Do(ctx, "snapshot-delete", name+"/"+snap, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if _, err := inst.Snapshot(snap); err != nil {
			return err
		}
		t, s, gone, err := snapshot.DeleteSnapshot(tree(inst), snap, holdsSnapshots(d))
		if err != nil {
			return err
		}
		// The heads go after the snapshot (the list is removed from its end).
		for _, v := range gone {
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: inst.Pool, Volume: v})
		}
		rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: inst.Pool, Volume: s.Volume, Snapshot: s.ID})
		setTree(inst, t)
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return snapshotEvent(tx, api.ActionInstanceSnapshotDeleted, name, snap)
	})
}
