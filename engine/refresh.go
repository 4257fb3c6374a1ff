package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/journal"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// RefreshResult says what a refresh did.
type RefreshResult struct {
	Added    []string // snapshots the target lacked, now copied
	Replaced []string // snapshots of the target that had diverged, replaced (--force)
	Bytes    int64    // bytes of differences moved from the source to the target
	By       string   // what carried them: the driver's streams or differences of the trees
}

// Refresh brings dst, an earlier copy of src that does not run, up to
// date: the snapshots of src that dst lacks are added (with their names,
// creation times and UUIDs), those dst has are kept, and the head becomes
// src's. A snapshot of dst with the name of one of src's but another UUID
// has diverged: the refresh is refused, unless force, which replaces it.
//
// Only what changed moves, into a new volume on dst's pool: each snapshot
// to add, then src's head, from the state before it, starting from dst's
// copy of the newest snapshot both share (from dst's head when they share
// none). The driver's incremental streams carry them where they fit
// (streamsFit); the differences of the trees otherwise (refreshTrees).
// The new head replaces the old one in one commit, as a restore's does, so
// that a refresh cut short leaves dst as it was. On ZFS, which receives an
// incremental stream only into the volume of its parent snapshot, the new
// volume first takes over the target's snapshots up to the shared one
// (forker); the journal has them given back if the refresh is undone.
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
	from, err := e.instance(src)
	if err != nil {
		return nil, err
	}
	to, err := e.instance(dst)
	if err != nil {
		return nil, err
	}
	srcD, _, err := e.driver(ctx, from.Pool)
	if err != nil {
		return nil, err
	}
	if err := e.stoppedForRefresh(dst); err != nil {
		return nil, err
	}
	head, release, err := e.frozenHead(ctx, from, srcD, true)
	if err != nil {
		return nil, err
	}
	defer release()
	return e.refresh(ctx, instanceRefresh(to, instanceLineage(from), head, force))
}

// stoppedForRefresh refuses the refresh of instance dst while it runs.
func (e *Engine) stoppedForRefresh(dst string) error {
	run, err := e.liveRun(dst)
	if err == nil && run != nil {
		err = errkind.Wrap(errkind.Busy, "instance %q is running: stop it before you refresh it", dst)
	}
	return err
}

// instanceRefresh is the refresh of instance to, which must not run, from
// the state head of from.
func instanceRefresh(to *store.Instance, from *lineage, head storage.Ref, force bool) *refreshOp {
	dst := to.Name
	return &refreshOp{kind: "refresh", target: dst, prefix: "i-", from: from, to: instanceLineage(to), head: head, force: force,
		prepare: func(tx *store.Tx) error { return notRunning(tx, dst, "refresh") },
		adopt: func(ctx context.Context, d storage.Volumes, vol string, shift *store.Shift) error {
			// The head is the copy's own, as any copy's.
			ident := *to
			ident.Volume, ident.Shift = vol, shift
			return identify(ctx, d, &ident, image.WhenCopy)
		},
		load: func(tx *store.Tx) (*lineage, error) {
			cur, err := tx.Instance(dst)
			if err != nil {
				return nil, err
			}
			return instanceLineage(cur), nil
		},
		save: func(tx *store.Tx, l *lineage) error {
			cur, err := tx.Instance(dst)
			if err != nil {
				return err
			}
			cur.Volume, cur.Retired, cur.Snapshots, cur.Shift = l.head, l.retired, l.snaps, l.shift
			if err := tx.PutInstance(cur); err != nil {
				return err
			}
			return instanceEvent(tx, api.ActionInstanceUpdated, dst, nil)
		}}
}

// lineage is what a refresh reads of its source and replaces of its
// target, an instance or a custom volume: the pool, the head, the heads
// that restores retired, the snapshots, and how the head's files are
// shifted on disk.
type lineage struct {
	what    string // for messages
	pool    string
	head    string
	retired []string
	snaps   []store.Snapshot
	shift   *store.Shift
}

func instanceLineage(i *store.Instance) *lineage {
	return &lineage{what: fmt.Sprintf("instance %q", i.Name), pool: i.Pool, head: i.Volume, retired: i.Retired, snaps: i.Snapshots, shift: i.Shift}
}

// refreshOp is one refresh: what it reads and replaces, and how the
// target's records are checked, read and written.
type refreshOp struct {
	kind, target string // the journal's
	prefix       string // of the IDs of the target's volumes
	from, to     *lineage
	head         storage.Ref // the source's state to take, held still
	force        bool
	// prepare checks, as the refresh begins and again as it commits,
	// that the target may change.
	prepare func(tx *store.Tx) error
	// adopt, when set, makes the new head the target's own.
	adopt func(ctx context.Context, d storage.Volumes, vol string, shift *store.Shift) error
	load  func(tx *store.Tx) (*lineage, error)
	save  func(tx *store.Tx, l *lineage) error
}

// refresh carries out op, as Refresh says, the target's locks held.
func (e *Engine) refresh(ctx context.Context, op *refreshOp) (*RefreshResult, error) {
	from, to := op.from, op.to
	srcD, srcPool, err := e.driver(ctx, from.pool)
	if err != nil {
		return nil, err
	}
	dstD, dstPool, err := e.driver(ctx, to.pool)
	if err != nil {
		return nil, err
	}
	plan, err := planRefresh(from, to, op.force)
	if err != nil {
		return nil, err
	}
	streams, err := streamsFit(ctx, srcD, dstD, srcPool.Driver == dstPool.Driver, from, op.head, plan)
	if err != nil {
		return nil, err
	}
	_, fork := dstD.(forker)
	rt, err := e.beginRefresh(op, plan, fork && streams)
	if err != nil {
		return nil, err
	}
	res := &RefreshResult{}
	if res.By, err = e.refreshVolume(ctx, rt.o, op, srcD, dstD, streams, rt.vol, plan, rt.added, &res.Bytes); err != nil {
		return nil, rt.o.Fail(ctx, fmt.Errorf("refresh %s from %s: %w", to.what, from.what, err))
	}
	if err := rt.commit(ctx, dstD, res); err != nil {
		return nil, err
	}
	return res, nil
}

// runningRefresh is a refresh under way, its intent in the journal: the
// new volume that becomes the target's head, and the snapshots it adds.
type runningRefresh struct {
	o     *journal.Op
	op    *refreshOp
	plan  *refreshPlan
	vol   string
	added []store.Snapshot
}

// beginRefresh records the intent of op, as plan says, in the journal;
// fork when the new volume takes over the target's snapshots (forker).
func (e *Engine) beginRefresh(op *refreshOp, plan *refreshPlan, fork bool) (*runningRefresh, error) {
	to := op.to
	vol := newID(op.prefix)
	added := make([]store.Snapshot, len(plan.missing))
	for i, s := range plan.missing {
		added[i] = store.Snapshot{Name: s.Name, ID: newID("s-"), Volume: vol, Created: s.Created, UUID: s.UUID, Shift: plan.shift, Expires: s.Expires}
	}
	o, err := e.journal.Begin(op.kind, op.target, func(tx *store.Tx, rec *store.Op) error {
		if err := op.prepare(tx); err != nil {
			return err
		}
		rec.Reserved = []string{store.Reservation(op.kind, op.target)}
		rec.Undo.Volumes = treeRefs(to.pool, vol, nil, added)
		if fork {
			rec.Undo.Forks = []store.Fork{{Pool: to.pool, Volume: vol, From: plan.base.Volume}}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &runningRefresh{o: o, op: op, plan: plan, vol: vol, added: added}, nil
}

// commit makes the new volume, filled, the target's head, in one commit,
// with the snapshots added, and those that diverged replaced; it notes
// them in res.
func (rt *runningRefresh) commit(ctx context.Context, dstD storage.Driver, res *RefreshResult) error {
	o, op, plan, to, vol := rt.o, rt.op, rt.plan, rt.op.to, rt.vol
	o.Step("refreshed")
	oldKept := false // the old head stays, retired, for its snapshots
	err := o.Commit(ctx, func(tx *store.Tx) error {
		rec := o.Rec
		cur, err := op.load(tx)
		if err != nil {
			return err
		}
		if cur.head != to.head || !slices.EqualFunc(cur.snaps, to.snaps, func(a, b store.Snapshot) bool { return a.ID == b.ID }) {
			return errkind.Wrap(errkind.Busy, "refresh %s: another command changed it meanwhile", to.what)
		}
		if err := op.prepare(tx); err != nil {
			return err
		}
		for i, s := range cur.snaps {
			if s.Volume == plan.base.Volume && slices.Contains(plan.forked, s.ID) {
				cur.snaps[i].Volume = vol
			}
		}
		holds := holdsSnapshots(dstD)
		t := treeOf(cur.head, cur.retired, cur.snaps)
		for _, name := range plan.diverged {
			var s snapshot.Snapshot
			var gone []string
			if t, s, gone, err = snapshot.DeleteSnapshot(t, name, holds); err != nil {
				return err
			}
			retire(rec, cur.pool, gone)
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: cur.pool, Volume: s.Volume, Snapshot: s.ID})
		}
		cur.head, cur.retired, cur.snaps = fromTree(t, cur.snaps)
		cur.snaps = append(cur.snaps, rt.added...)
		slices.SortStableFunc(cur.snaps, func(a, b store.Snapshot) int { return a.Created.Compare(b.Created) })
		t = treeOf(cur.head, cur.retired, cur.snaps)
		t.Retired, t.Head = append(slices.Clone(t.Retired), t.Head), vol
		t, gone := snapshot.Collect(t, holds)
		retire(rec, cur.pool, gone)
		oldKept = slices.Contains(t.Retired, to.head)
		cur.head, cur.retired, cur.snaps = fromTree(t, cur.snaps)
		cur.shift = plan.shift
		return op.save(tx, cur)
	})
	if err != nil {
		return err
	}
	if oldKept {
		retireHead(ctx, dstD, op.target, to.head)
	}
	res.Replaced = plan.diverged
	for _, s := range rt.added {
		res.Added = append(res.Added, s.Name)
	}
	return nil
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
	// forked are the IDs of the snapshots of base's volume that the new
	// volume took over (forker), base's among them.
	forked []string
}

// planRefresh compares the snapshots of from and to by UUID.
func planRefresh(from, to *lineage, force bool) (*refreshPlan, error) {
	p := &refreshPlan{base: storage.Ref{Volume: to.head}, shift: to.shift}
	for _, s := range from.snaps {
		i := slices.IndexFunc(to.snaps, func(k store.Snapshot) bool { return s.UUID != "" && k.UUID == s.UUID })
		if i >= 0 {
			k := to.snaps[i]
			p.base, p.shift = storage.Ref{Volume: k.Volume, Snapshot: k.ID}, k.Shift
			p.srcBase = storage.Ref{Volume: s.Volume, Snapshot: s.ID}
			continue
		}
		if slices.ContainsFunc(to.snaps, func(k store.Snapshot) bool { return k.Name == s.Name }) {
			p.diverged = append(p.diverged, s.Name)
		}
		p.missing = append(p.missing, s)
	}
	if len(p.diverged) > 0 && !force {
		return nil, errkind.Wrap(errkind.Invalid, "%s has diverged from %s: its snapshots %v are not those of the source; refresh with --force to replace them", to.what, from.what, p.diverged)
	}
	return p, nil
}

// streamsFit reports whether the driver's incremental streams can carry
// the refresh: both pools have a driver that names the states its streams
// start from (streamIDer) and can receive them for a refresh (ontoReceiver
// or forker); the target's copy of the shared snapshot has the stream ID
// of the source's; the files to send are shifted on disk as those of that
// copy, or none are, as streams carry files as they are; and the source's
// snapshots to send and its head live in the volume of the shared
// snapshot, as each stream is made against a snapshot of its own volume.
func streamsFit(ctx context.Context, srcD, dstD storage.Driver, sameDriver bool, from *lineage, head storage.Ref, p *refreshPlan) (bool, error) {
	rd, ok := dstD.(streamIDer)
	rs, _ := srcD.(streamIDer)
	_, onto := dstD.(ontoReceiver)
	_, fork := dstD.(forker)
	if !ok || rs == nil || !(onto || fork) || !sameDriver || p.srcBase.Volume == "" || !sameShift(from.shift, p.shift) || head.Volume != p.srcBase.Volume {
		return false, nil
	}
	for _, s := range p.missing {
		if s.Volume != p.srcBase.Volume || !sameShift(s.Shift, p.shift) {
			return false, nil
		}
	}
	want, err := rs.StreamID(ctx, p.srcBase)
	if err != nil {
		return false, err
	}
	have, err := rd.StreamID(ctx, p.base)
	return err == nil && have == want, err
}

// refreshVolume makes vol, on the target's pool, hold each snapshot to add (kept
// as added says) and then the source's head, each from the one before:
// by the driver's streams where they fit, by differences of the trees
// otherwise. It says which.
func (e *Engine) refreshVolume(ctx context.Context, o *journal.Op, op *refreshOp, srcD, dstD storage.Driver, streams bool, vol string, plan *refreshPlan, added []store.Snapshot, moved *int64) (string, error) {
	by := "differences of the trees"
	var next func(src storage.Ref, shift *store.Shift, dst storage.Ref) error
	var err error
	if streams {
		by = "the driver's streams"
		if next, err = refreshStreams(ctx, o, srcD, dstD, vol, plan, moved); err != nil {
			return "", err
		}
	} else {
		var release func()
		if next, release, err = refreshTrees(ctx, srcD, dstD, vol, plan, moved); err != nil {
			return "", err
		}
		defer release()
	}
	for i, s := range plan.missing {
		if err := next(storage.Ref{Volume: s.Volume, Snapshot: s.ID}, s.Shift, storage.Ref{Volume: vol, Snapshot: added[i].ID}); err != nil {
			return "", fmt.Errorf("snapshot %s: %w", s.Name, err)
		}
	}
	o.Step("snapshots")
	if err := next(op.head, op.from.shift, storage.Ref{Volume: vol}); err != nil {
		return "", err
	}
	if op.adopt != nil {
		if err := op.adopt(ctx, dstD, vol, plan.shift); err != nil {
			return "", err
		}
	}
	return by, syncVolume(ctx, dstD, vol)
}

// refreshStreams returns what brings the new volume vol to each state in
// turn by the driver's incremental streams, each made against the state
// before it, starting from the source's copy of the shared snapshot.
func refreshStreams(ctx context.Context, o *journal.Op, srcD, dstD storage.Driver, vol string, plan *refreshPlan, moved *int64) (func(storage.Ref, *store.Shift, storage.Ref) error, error) {
	land, err := landStreams(ctx, o, dstD, vol, plan)
	if err != nil {
		return nil, err
	}
	parent := plan.srcBase.Snapshot
	return func(src storage.Ref, _ *store.Shift, dst storage.Ref) error {
		err := iopipe.Run(func(w io.Writer) error { return srcD.Send(ctx, src, parent, countWriter{w, moved}) },
			func(r io.Reader) error { return land(dst, r) })
		parent = src.Snapshot
		return err
	}, nil
}

// landStreams returns what receives, in turn, the streams that bring the
// new volume vol to each state: the first is received onto the target's
// copy of the shared snapshot, each other onto the state before it. A
// forker first makes vol take over that copy, and each stream lands in
// vol.
func landStreams(ctx context.Context, o *journal.Op, dstD storage.Driver, vol string, plan *refreshPlan) (func(dst storage.Ref, r io.Reader) error, error) {
	onto := ""
	if fk, ok := dstD.(forker); ok {
		ids, err := fk.Fork(ctx, plan.base, vol)
		if err != nil {
			return nil, err
		}
		plan.forked, onto = ids, plan.base.Snapshot
		o.Step("forked")
	}
	return func(dst storage.Ref, r io.Reader) error {
		var err error
		if onto == "" {
			err = dstD.(ontoReceiver).ReceiveOnto(ctx, dst, plan.base, r)
		} else {
			err = dstD.Receive(ctx, dst, onto, r)
		}
		onto = dst.Snapshot
		return err
	}, nil
}

// refreshTrees makes vol a clone of plan.base and returns what brings it
// to each state in turn by the difference of the source's trees, each
// from the one before, and what releases the last tree.
func refreshTrees(ctx context.Context, srcD, dstD storage.Driver, vol string, plan *refreshPlan, moved *int64) (func(storage.Ref, *store.Shift, storage.Ref) error, func(), error) {
	if err := dstD.CloneVolume(ctx, plan.base, vol); err != nil {
		return nil, nil, err
	}
	root, err := dstD.VolumePath(ctx, vol)
	if err != nil {
		return nil, nil, err
	}
	// prev is the tree that vol holds, on the source when it can be.
	var prev string
	var release func() error
	if plan.srcBase.Volume != "" {
		prev, release, err = openRef(ctx, srcD, plan.srcBase)
	} else {
		prev, release, err = openRef(ctx, dstD, plan.base)
	}
	if err != nil {
		return nil, nil, err
	}
	next := func(src storage.Ref, shift *store.Shift, dst storage.Ref) error {
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
		if dst.Snapshot == "" {
			return nil
		}
		return dstD.CreateSnapshot(ctx, dst)
	}
	return next, func() { release() }, nil
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
