package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// RefreshResult says what a refresh did.
type RefreshResult struct {
	Added    []string // snapshots the target lacked, now copied
	Replaced []string // snapshots of the target that had diverged, replaced (--force)
	Bytes    int64    // bytes of differences moved from the source to the target
}

// Refresh brings dst, an earlier copy of src that does not run, up to
// date: the snapshots of src that dst lacks are added (with their names,
// creation times and UUIDs), those dst has are kept, and the head becomes
// src's. A snapshot of dst with the name of one of src's but another UUID
// has diverged: the refresh is refused, unless force, which replaces it.
//
// Only what changed moves. The new head starts as a clone, in dst's pool,
// of dst's copy of the newest snapshot both share (of dst's head when they
// share none), and each snapshot to add, then src's head, comes as the
// difference between its tree and the one before it: src's copy of that
// shared snapshot, then the snapshot added before it (dst's head, by the
// quick check, when they share none). That head replaces the old one in one commit, as a restore's does, so
// that a refresh cut short leaves dst as it was.
func (e *Engine) Refresh(ctx context.Context, src, dst string, force bool) (*RefreshResult, error) {
	if src == dst {
		return nil, errkind.Wrap(errkind.Invalid, "refresh %s from itself", dst)
	}
	// Both stay as they are while the refresh reads one and replaces the
	// other; the locks are taken in the order of the names, so that two
	// refreshes the other way round cannot wait on each other.
	for _, name := range slices.Sorted(slices.Values([]string{src, dst})) {
		lock, err := e.instanceLock(name)
		if err != nil {
			return nil, err
		}
		defer lock.Close()
	}
	from, srcD, err := e.instanceDriver(ctx, src)
	if err != nil {
		return nil, err
	}
	to, dstD, err := e.instanceDriver(ctx, dst)
	if err != nil {
		return nil, err
	}
	if run, err := e.liveRun(dst); err != nil || run != nil {
		if err == nil {
			err = errkind.Wrap(errkind.Busy, "instance %q is running: stop it before you refresh it", dst)
		}
		return nil, err
	}
	plan, err := planRefresh(from, to, force)
	if err != nil {
		return nil, err
	}
	head, release, err := e.frozenHead(ctx, from, srcD, true)
	if err != nil {
		return nil, err
	}
	defer release()
	vol := newID("i-")
	added := make([]store.Snapshot, len(plan.missing))
	for i, s := range plan.missing {
		added[i] = store.Snapshot{Name: s.Name, ID: newID("s-"), Volume: vol, Created: s.Created, UUID: s.UUID, Shift: plan.shift}
	}
	o, err := e.journal.Begin("refresh", dst, func(tx *store.Tx, rec *store.Op) error {
		if err := notRunning(tx, dst, "refresh"); err != nil {
			return err
		}
		rec.Reserved = []string{store.Reservation("refresh", dst)}
		rec.Undo.Volumes = []store.VolumeRef{{Pool: to.Pool, Volume: vol}}
		for i := range added {
			rec.Undo.Volumes = append(rec.Undo.Volumes, snapRef(to, &added[i]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &RefreshResult{Replaced: plan.diverged}
	if err := e.refreshVolume(ctx, from, srcD, head, to, dstD, vol, plan, added, &res.Bytes); err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("refresh %s from %s: %w", dst, src, err))
	}
	o.Step("refreshed")
	oldKept := false // the old head stays, retired, for its snapshots
	err = o.Commit(ctx, func(tx *store.Tx) error {
		rec := o.Rec
		cur, err := tx.Instance(dst)
		if err != nil {
			return err
		}
		if cur.Volume != to.Volume || !slices.EqualFunc(cur.Snapshots, to.Snapshots, func(a, b store.Snapshot) bool { return a.ID == b.ID }) {
			return errkind.Wrap(errkind.Busy, "refresh %s: another command changed the instance meanwhile", dst)
		}
		holds := holdsSnapshots(dstD)
		t := tree(cur)
		for _, name := range plan.diverged {
			var s snapshot.Snapshot
			var gone []string
			if t, s, gone, err = snapshot.DeleteSnapshot(t, name, holds); err != nil {
				return err
			}
			retire(rec, cur.Pool, gone)
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: cur.Pool, Volume: s.Volume, Snapshot: s.ID})
		}
		setTree(cur, t)
		cur.Snapshots = append(cur.Snapshots, added...)
		slices.SortStableFunc(cur.Snapshots, func(a, b store.Snapshot) int { return a.Created.Compare(b.Created) })
		t = tree(cur)
		t.Retired, t.Head = append(slices.Clone(t.Retired), t.Head), vol
		t, gone := snapshot.Collect(t, holds)
		retire(rec, cur.Pool, gone)
		oldKept = slices.Contains(t.Retired, to.Volume)
		setTree(cur, t)
		cur.Shift = plan.shift
		return tx.PutInstance(cur)
	})
	if err != nil {
		return nil, err
	}
	if oldKept {
		retireHead(ctx, dstD, dst, to.Volume)
	}
	for _, s := range added {
		res.Added = append(res.Added, s.Name)
	}
	return res, nil
}

// retire has the heads gone removed once rec commits.
func retire(rec *store.Op, pool string, gone []string) {
	for _, v := range gone {
		rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: v})
	}
}

// refreshPlan is what a refresh copies, and onto what.
type refreshPlan struct {
	missing  []store.Snapshot // src's snapshots that dst lacks, oldest first
	diverged []string         // dst's snapshots to replace
	base     storage.Ref      // the tree on dst that the new head starts from
	shift    *store.Shift     // how base's files are shifted on disk
	// srcBase is the source's copy of base, when they share a snapshot:
	// a difference between two trees of one filesystem is told by inodes
	// and exact times, where one across pools would be by the quick check
	// alone, and across drivers of other time resolutions not at all.
	srcBase storage.Ref
}

// planRefresh compares the snapshots of from and to by UUID.
func planRefresh(from, to *store.Instance, force bool) (*refreshPlan, error) {
	p := &refreshPlan{base: storage.Ref{Volume: to.Volume}, shift: to.Shift}
	for _, s := range from.Snapshots {
		i := slices.IndexFunc(to.Snapshots, func(k store.Snapshot) bool { return s.UUID != "" && k.UUID == s.UUID })
		if i >= 0 {
			k := to.Snapshots[i]
			p.base, p.shift = storage.Ref{Volume: k.Volume, Snapshot: k.ID}, k.Shift
			p.srcBase = storage.Ref{Volume: s.Volume, Snapshot: s.ID}
			continue
		}
		if _, err := to.Snapshot(s.Name); err == nil {
			p.diverged = append(p.diverged, s.Name)
		}
		p.missing = append(p.missing, s)
	}
	if len(p.diverged) > 0 && !force {
		return nil, errkind.Wrap(errkind.Invalid, "instance %q has diverged from %q: its snapshots %v are not those of the source; refresh with --force to replace them", to.Name, from.Name, p.diverged)
	}
	return p, nil
}

// refreshVolume makes vol, on to's pool, a clone of plan.base brought to
// each snapshot to add (kept as added says) and then to the source's head.
func (e *Engine) refreshVolume(ctx context.Context, from *store.Instance, srcD storage.Driver, head storage.Ref, to *store.Instance, dstD storage.Driver, vol string, plan *refreshPlan, added []store.Snapshot, moved *int64) error {
	if err := dstD.CloneVolume(ctx, plan.base, vol); err != nil {
		return err
	}
	root, err := dstD.VolumePath(ctx, vol)
	if err != nil {
		return err
	}
	// prev is the tree that vol holds, on the source when it can be.
	var prev string
	release := func() error { return nil }
	if plan.srcBase.Volume != "" {
		prev, release, err = openRef(ctx, srcD, plan.srcBase)
	} else {
		prev, release, err = openRef(ctx, dstD, plan.base)
	}
	if err != nil {
		return err
	}
	defer func() { release() }()
	step := func(src storage.Ref, shift *store.Shift) error {
		tree, rel, err := openRef(ctx, srcD, src)
		if err != nil {
			return err
		}
		if err := applyDifference(ctx, tree, prev, root, idmap.Shift{From: shiftMap(shift), To: shiftMap(plan.shift)}, moved); err != nil {
			rel()
			return err
		}
		release()
		prev, release = tree, rel
		return nil
	}
	for i, s := range plan.missing {
		if err := step(storage.Ref{Volume: s.Volume, Snapshot: s.ID}, s.Shift); err != nil {
			return fmt.Errorf("snapshot %s: %w", s.Name, err)
		}
		if err := dstD.CreateSnapshot(ctx, storage.Ref{Volume: vol, Snapshot: added[i].ID}); err != nil {
			return err
		}
	}
	if err := step(head, from.Shift); err != nil {
		return err
	}
	// The head is the copy's own, as any copy's.
	ident := *to
	ident.Volume, ident.Shift = vol, plan.shift
	if err := identify(ctx, dstD, &ident, image.WhenCopy); err != nil {
		return err
	}
	return syncVolume(ctx, dstD, vol)
}

// applyDifference brings the tree at root, which holds what base holds,
// to what tree holds, by the difference between tree and base (whose
// files are as ids moves them), and adds the bytes that took to moved.
func applyDifference(ctx context.Context, tree, base, root string, ids idmap.Shift, moved *int64) error {
	return iopipe.Run(func(w io.Writer) error {
		tw := tar.NewWriter(countWriter{w, moved})
		if err := archive.WriteTree(ctx, tw, tree, base, "", ids); err != nil {
			return err
		}
		return tw.Close()
	}, func(r io.Reader) error { return archive.Extract(ctx, r, root, archive.ExtractOptions{Whiteouts: true}) })
}

// countWriter adds what it writes to n.
type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	*c.n += int64(k)
	return k, err
}
