// The instance's volumes as the snapshot model sees them, and the
// collection of the heads that restores retired.

package engine

import (
	"context"
	"log/slog"
	"slices"

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
	return treeOf(inst.Volume, inst.Retired, inst.Snapshots)
}

// treeOf is the snapshot model's view of a head, the heads that restores
// retired, and the snapshots: an instance's or a custom volume's.
func treeOf(head string, retired []string, snaps []store.Snapshot) snapshot.Tree {
	return snapshot.Tree{Head: head, Retired: retired, Snapshots: modelSnapshots(snaps)}
}

func modelSnapshots(snaps []store.Snapshot) []snapshot.Snapshot {
	out := make([]snapshot.Snapshot, len(snaps))
	for i, s := range snaps {
		out[i] = snapshot.Snapshot{Name: s.Name, ID: s.ID, Volume: s.Volume}
	}
	return out
}

// setTree records t as inst's volumes.
func setTree(inst *store.Instance, t snapshot.Tree) {
	inst.Volume, inst.Retired, inst.Snapshots = fromTree(t, inst.Snapshots)
}

// fromTree returns the head and retired heads of t, and which of snaps
// remain in it, in which volume, under which ID.
func fromTree(t snapshot.Tree, snaps []store.Snapshot) (head string, retired []string, kept []store.Snapshot) {
	kept = make([]store.Snapshot, 0, len(t.Snapshots))
	for _, s := range t.Snapshots {
		if i := slices.IndexFunc(snaps, func(k store.Snapshot) bool { return k.Name == s.Name }); i >= 0 {
			k := snaps[i]
			k.ID, k.Volume = s.ID, s.Volume
			kept = append(kept, k)
		}
	}
	return t.Head, t.Retired, kept
}

// treeRefs lists the volumes of a tree in the order they are removed: the
// heads go last (a cleanup goes from the list's end), as snapshots first
// saves ZFS from hiding them.
func treeRefs(pool, head string, retired []string, snaps []store.Snapshot) []store.VolumeRef {
	refs := []store.VolumeRef{{Pool: pool, Volume: head}}
	for _, v := range retired {
		refs = append(refs, store.VolumeRef{Pool: pool, Volume: v})
	}
	for _, s := range snaps {
		refs = append(refs, store.VolumeRef{Pool: pool, Volume: s.Volume, Snapshot: s.ID})
	}
	return refs
}
