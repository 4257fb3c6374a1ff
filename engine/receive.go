package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/backup"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// ReceiveCopy makes instance name on pool from r, the backup stream of
// another host's instance (Export with KeepShift), as Copy makes one
// here: created now, with a copy's identity, and new addresses unless
// keepAddresses. A stream cut short leaves nothing behind.
func (e *Engine) ReceiveCopy(ctx context.Context, r io.Reader, name, pool string, keepAddresses bool) (*store.Instance, error) {
	return e.importInstance(ctx, r, name, pool, keepAddresses, true)
}

// ReceiveRefresh brings dst, which must not run, up to date from r, the
// refresh stream of another host's instance (Export with Refresh, given
// the UUIDs of dst's snapshots): as Refresh does here, but the
// differences come over the stream: the driver's incremental streams, or
// differences of the trees. They land in a new volume, started from
// dst's copy of the snapshot the stream starts from (an empty volume when
// the two share none), which replaces dst's head in one commit; a stream
// cut short leaves dst as it was.
func (e *Engine) ReceiveRefresh(ctx context.Context, r io.Reader, dst string, force bool) (*RefreshResult, error) {
	lock, err := e.instanceLock(dst)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	to, d, err := e.instanceDriver(ctx, dst)
	if err != nil {
		return nil, err
	}
	_, pool, err := e.driver(ctx, to.Pool)
	if err != nil {
		return nil, err
	}
	if err := e.stoppedForRefresh(dst); err != nil {
		return nil, err
	}
	cr := &iopipe.Counter{R: r}
	rr := &refreshReceiver{e: e, ctx: ctx, d: d, driver: pool.Driver, to: to, force: force}
	err = backup.Read(ctx, cr, rr)
	if rr.rt == nil {
		return nil, err
	}
	if err != nil {
		return nil, rr.rt.o.Fail(ctx, fmt.Errorf("refresh %s: %w", dst, err))
	}
	res := &RefreshResult{Bytes: cr.N, By: "a stream of differences"}
	if rr.land != nil {
		res.By = "the driver's streams"
	}
	if err := rr.rt.commit(ctx, d, res); err != nil {
		return nil, err
	}
	return res, nil
}

// refreshReceiver applies a refresh stream, as backup.Read hands it over.
type refreshReceiver struct {
	e      *Engine
	ctx    context.Context
	d      storage.Driver
	driver string // the pool's
	to     *store.Instance
	force  bool
	rt     *runningRefresh
	// land receives the driver's streams in turn, for a refresh by them.
	land func(dst storage.Ref, r io.Reader) error
}

func (rr *refreshReceiver) Begin(x *backup.Index) (string, idmap.Shift, error) {
	if x.Type != "" {
		return "", idmap.Shift{}, errkind.Wrap(errkind.Invalid, "a refresh takes an instance's stream, not a %s volume's", x.Type)
	}
	plan, err := streamPlan(x, rr.to, rr.force)
	if err != nil {
		return "", idmap.Shift{}, err
	}
	op := instanceRefresh(rr.to, &lineage{what: "the stream of " + x.Name}, storage.Ref{}, rr.force)
	if x.Optimized != "" {
		return "", idmap.Shift{}, rr.beginStreams(x, op, plan)
	}
	if rr.rt, err = rr.e.beginRefresh(op, plan, false); err != nil {
		return "", idmap.Shift{}, err
	}
	vol := rr.rt.vol
	if plan.base.Snapshot != "" {
		if err := rr.d.CloneVolume(rr.ctx, plan.base, vol); err != nil {
			return "", idmap.Shift{}, err
		}
		root, err := rr.d.VolumePath(rr.ctx, vol)
		return root, onDisk(plan.shift), err
	}
	// Nothing shared: the stream is whole, unpacked into an empty
	// volume, shifted as the pool needs for the instance's map.
	root, err := rr.d.CreateVolume(rr.ctx, vol)
	if err != nil {
		return "", idmap.Shift{}, err
	}
	m, err := rr.e.instanceMapOf(rr.to)
	if err == nil {
		plan.shift, err = rr.e.diskShift(root, m)
	}
	for i := range rr.rt.added {
		rr.rt.added[i].Shift = plan.shift
	}
	return root, onDisk(plan.shift), err
}

// streamPlan is the plan of a refresh of to by the stream whose index is
// x: the snapshots it lists are added, those of to with their names
// replaced (force), and the first tree applies to to's copy of x.Base.
func streamPlan(x *backup.Index, to *store.Instance, force bool) (*refreshPlan, error) {
	p := &refreshPlan{}
	if x.Base != "" {
		i := slices.IndexFunc(to.Snapshots, func(s store.Snapshot) bool { return s.UUID == x.Base })
		if i < 0 {
			return nil, errkind.Wrap(errkind.Busy, "instance %q no longer has the snapshot the refresh starts from: refresh again", to.Name)
		}
		k := to.Snapshots[i]
		p.base, p.shift = storage.Ref{Volume: k.Volume, Snapshot: k.ID}, k.Shift
	}
	for _, s := range x.Snapshots {
		if slices.ContainsFunc(to.Snapshots, func(k store.Snapshot) bool { return s.UUID != "" && k.UUID == s.UUID }) {
			return nil, errkind.Wrap(errkind.Invalid, "the refresh stream carries snapshot %q, which instance %q has already", s.Name, to.Name)
		}
		if slices.ContainsFunc(to.Snapshots, func(k store.Snapshot) bool { return k.Name == s.Name }) {
			p.diverged = append(p.diverged, s.Name)
		}
		if s.UUID == "" {
			s.UUID = newUUID()
		}
		p.missing = append(p.missing, store.Snapshot{Name: s.Name, Created: s.Created, UUID: s.UUID, Expires: s.Expires})
	}
	if len(p.diverged) > 0 && !force {
		return nil, errkind.Wrap(errkind.Invalid, "instance %q has diverged from %s: its snapshots %v are not those of the source; refresh with --force to replace them", to.Name, x.Name, p.diverged)
	}
	return p, nil
}

// beginStreams begins a refresh by the driver's incremental streams,
// which x lists: the pool's driver's, one per snapshot to add and the
// head's last, the first made against a snapshot whose stream ID is that
// of the target's copy of the base, with files shifted on disk as that
// copy's.
func (rr *refreshReceiver) beginStreams(x *backup.Index, op *refreshOp, plan *refreshPlan) error {
	sd, ids := rr.d.(streamIDer)
	_, onto := rr.d.(ontoReceiver)
	_, fork := rr.d.(forker)
	if x.Optimized != rr.driver || !ids || !(onto || fork) || x.BaseStream == "" {
		return errkind.Wrap(errkind.Invalid, "a refresh of instance %q (pool %s, %s) cannot take %s streams that do not start from a snapshot it holds", rr.to.Name, rr.to.Pool, rr.driver, x.Optimized)
	}
	if len(x.Streams) != len(x.Snapshots)+1 {
		return errkind.Wrap(errkind.Invalid, "the refresh stream has %d driver streams for %d snapshots and the head", len(x.Streams), len(x.Snapshots))
	}
	for i, s := range x.Snapshots {
		if x.Streams[i].Snapshot != s.Name {
			return errkind.Wrap(errkind.Invalid, "stream %d of the refresh holds %q, not snapshot %q", i, x.Streams[i].Snapshot, s.Name)
		}
	}
	var extra backupExtra
	if err := json.Unmarshal(x.Extra, &extra); err != nil {
		return errkind.Wrap(errkind.Invalid, "the refresh stream's index: %w", err)
	}
	id, err := sd.StreamID(rr.ctx, plan.base)
	if err != nil {
		return err
	}
	if id != x.BaseStream || !sameShift(extra.Shift, plan.shift) {
		return errkind.Wrap(errkind.Invalid, "instance %q's copy of the snapshot the refresh starts from is not the one its driver streams were made against", rr.to.Name)
	}
	if rr.rt, err = rr.e.beginRefresh(op, plan, fork); err != nil {
		return err
	}
	rr.land, err = landStreams(rr.ctx, rr.rt.o, rr.d, rr.rt.vol, plan)
	return err
}

func (rr *refreshReceiver) TreeDone(i int) error {
	rt := rr.rt
	if i < len(rt.added) {
		return rr.d.CreateSnapshot(rr.ctx, storage.Ref{Volume: rt.vol, Snapshot: rt.added[i].ID})
	}
	rt.o.Step("snapshots")
	return rr.headDone()
}

// headDone finishes the new volume once its head has landed.
func (rr *refreshReceiver) headDone() error {
	rt := rr.rt
	if err := rt.op.adopt(rr.ctx, rr.d, rt.vol, rt.plan.shift); err != nil {
		return err
	}
	return syncVolume(rr.ctx, rr.d, rt.vol)
}

func (rr *refreshReceiver) Stream(k int, r io.Reader) error {
	rt := rr.rt
	dst := storage.Ref{Volume: rt.vol}
	if k < len(rt.added) {
		dst.Snapshot = rt.added[k].ID
	} else {
		rt.o.Step("snapshots")
	}
	if err := rr.land(dst, r); err != nil {
		return err
	}
	if k < len(rt.added) {
		return nil
	}
	return rr.headDone()
}
