// The instance's volumes as the snapshot model sees them, and the
// collection of the heads that restores retired.

package engine

import (
	"context"
	"log/slog"

	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// headRetirer is implemented by drivers whose snapshots need the head they
// were taken of (ZFS): a retired head stays until its last snapshot goes,
// and RetireHead unmounts it meanwhile.
type headRetirer interface {
	RetireHead(ctx context.Context, vol string) error
}

// retireHead unmounts vol, the head of instance name that a restore or a
// refresh replaced, where the driver keeps it for its snapshots: a head
// left mounted only clutters the host. A failure is logged only.
func retireHead(ctx context.Context, d storage.Volumes, name, vol string) {
	if r, ok := d.(headRetirer); ok {
		if err := r.RetireHead(ctx, vol); err != nil {
			slog.Warn("could not unmount the head that was replaced", "instance", name, "volume", vol, "error", err)
		}
	}
}

// holdsSnapshots reports whether d's snapshots need their head.
func holdsSnapshots(d storage.Volumes) bool {
	_, ok := d.(headRetirer)
	return ok
}

// collect removes the heads of inst that restores retired and that may go
// now (snapshot.Collect). A restore leaves its old head for later, so that
// it stays one clone; the instance's next start collects it, as do the
// deletion of a snapshot or of the instance. A failure is logged, not
// returned: the heads stay recorded, and the next collection tries again.
func (e *Engine) collect(ctx context.Context, inst *store.Instance, d storage.Driver) {
	if _, gone := snapshot.Collect(tree(inst), holdsSnapshots(d)); len(gone) == 0 {
		return // the common case costs no commit
	}
	err := e.journal.Do(ctx, "collect", inst.Name, func(tx *store.Tx, rec *store.Op) error {
		cur, err := tx.Instance(inst.Name)
		if err != nil {
			return err
		}
		t, gone := snapshot.Collect(tree(cur), holdsSnapshots(d))
		for _, v := range gone {
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: cur.Pool, Volume: v})
		}
		setTree(cur, t)
		return tx.PutInstance(cur)
	})
	if err != nil {
		slog.Warn("could not collect the heads that restores retired; the next start tries again", "instance", inst.Name, "error", err)
	}
}

// tree is the snapshot model's view of inst's volumes.
func tree(inst *store.Instance) snapshot.Tree {
	return snapshot.Tree{Head: inst.Volume, Retired: inst.Retired, Snapshots: modelSnapshots(inst.Snapshots)}
}

func modelSnapshots(snaps []store.Snapshot) []snapshot.Snapshot {
	out := make([]snapshot.Snapshot, len(snaps))
	for i, s := range snaps {
		out[i] = snapshot.Snapshot{Name: s.Name, ID: s.ID, Volume: s.Volume}
	}
	return out
}

// setTree records t as inst's volumes: its head and retired heads, and
// which of its snapshots remain, in which volume, under which ID.
func setTree(inst *store.Instance, t snapshot.Tree) {
	inst.Volume, inst.Retired = t.Head, t.Retired
	kept := make([]store.Snapshot, 0, len(t.Snapshots))
	for _, s := range t.Snapshots {
		if k, err := inst.Snapshot(s.Name); err == nil {
			k.ID, k.Volume = s.ID, s.Volume
			kept = append(kept, *k)
		}
	}
	inst.Snapshots = kept
}
