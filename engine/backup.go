package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/backup"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/journal"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// ExportOptions tune Export.
type ExportOptions struct {
	InstanceOnly bool // leave the snapshots out
	Optimized    bool // the driver's own streams, for a pool of the same driver
	// KeepShift has optimized streams carry files shifted on disk as they
	// are, the shift in the index: for a copy on the host, which keeps it.
	KeepShift   bool
	Compression string // zstd when empty
	// Refresh writes a refresh's stream for a receiver that holds the
	// snapshots whose UUIDs Have lists: the snapshots it lacks and the
	// head, the first as the difference from the newest snapshot both
	// hold (ReceiveRefresh applies it). With Optimized, the driver's
	// incremental streams carry it when they fit (see streamsFit):
	// BaseStream is then the stream ID of the receiver's copy of that
	// snapshot. Otherwise it is portable.
	Refresh    bool
	Have       []string
	BaseStream string
	// Snapshot exports this snapshot alone, as the head of an instance
	// with none: for a copy of one snapshot.
	Snapshot string
	// Progress, when set, is told the expected number of uncompressed bytes
	// (an estimate) once, then each byte as it is written.
	Progress Progress
}

// Progress follows a long stream.
type Progress interface {
	Expect(total int64)
	Add(n int)
}

// Export writes instance name, with its snapshots, as a backup stream to w.
// A running instance is read from a snapshot taken for the export.
func (e *Engine) Export(ctx context.Context, name string, w io.Writer, opts ExportOptions) error {
	if opts.Compression == "" {
		opts.Compression = compression.Zstd
	}
	if err := compression.Check(opts.Compression); err != nil {
		return err
	}
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	return e.export(ctx, name, w, opts)
}

// export is Export, for a caller that holds the instance's lock and has
// checked opts.
func (e *Engine) export(ctx context.Context, name string, w io.Writer, opts ExportOptions) error {
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return err
	}
	_, pool, err := e.driver(ctx, inst.Pool)
	if err != nil {
		return err
	}
	snaps, headShift := inst.Snapshots, inst.Shift
	var base *store.Snapshot
	var snap *store.Snapshot
	switch {
	case opts.Snapshot != "":
		if snap, err = inst.Snapshot(opts.Snapshot); err != nil {
			return err
		}
		snaps, headShift = nil, snap.Shift
		opts.Optimized = false // a driver stream holds a volume's head
	case opts.Refresh:
		snaps, base = lacking(inst.Snapshots, opts.Have)
		if opts.Optimized, err = refreshStreamsFit(ctx, d, inst, base, snaps, opts.BaseStream); err != nil {
			return err
		}
	case opts.InstanceOnly:
		snaps = nil
	}
	if opts.Optimized && opts.KeepShift && !oneShift(headShift, snaps) {
		// A copy's driver streams would carry files shifted unlike one
		// another; the portable form unshifts them.
		opts.Optimized = false
	}
	if opts.Optimized && shifted(headShift, snaps) && !opts.KeepShift {
		return errkind.Wrap(errkind.Invalid, "export %s: its files are shifted on disk for its user namespace (pool %s cannot idmap), and a driver stream would carry them so: export it without --optimized", name, inst.Pool)
	}
	head, release := storage.Ref{}, func() {}
	if snap != nil {
		head = storage.Ref{Volume: snap.Volume, Snapshot: snap.ID}
	} else if head, release, err = e.frozenHead(ctx, inst, d, !opts.Optimized); err != nil {
		return err
	}
	defer release()
	x := &backup.Index{Name: inst.Name, Created: inst.Created, Image: inst.Image, Config: inst.Config}
	extra := backupExtra{Templates: inst.Templates, Profiles: inst.Profiles, Devices: inst.Devices}
	if inst.Metadata != nil {
		extra.Metadata = imageMetadata(inst.Metadata)
	}
	if opts.Optimized && opts.KeepShift {
		extra.Shift = headShift
	}
	if x.Extra, err = json.Marshal(extra); err != nil {
		return err
	}
	if base != nil {
		x.Base = base.UUID
		if opts.Optimized {
			x.BaseStream = opts.BaseStream
		}
	}
	if err := writeBackup(ctx, w, x, pool.Driver, d, base, snaps, head, headShift, opts); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}

// lacking returns the snapshots of snaps whose UUIDs have does not list,
// and the newest of those it lists, nil if none: what a refresh sends,
// and what it starts from.
func lacking(snaps []store.Snapshot, have []string) ([]store.Snapshot, *store.Snapshot) {
	var out []store.Snapshot
	var base *store.Snapshot
	for i, s := range snaps {
		if s.UUID != "" && slices.Contains(have, s.UUID) {
			base = &snaps[i]
		} else {
			out = append(out, s)
		}
	}
	return out, base
}

// writeBackup writes x, with snaps and then head (its files shifted on
// disk by headShift), to w as opts say; driver is the pool's. base, when
// not nil, is the snapshot the portable form's first tree is the
// difference from.
func writeBackup(ctx context.Context, w io.Writer, x *backup.Index, driver string, d storage.Driver, base *store.Snapshot, snaps []store.Snapshot, head storage.Ref, headShift *store.Shift, opts ExportOptions) error {
	for _, s := range snaps {
		x.Snapshots = append(x.Snapshots, backup.Snapshot{Name: s.Name, Created: s.Created, UUID: s.UUID, Expires: s.Expires})
	}
	var add func(int)
	if opts.Progress != nil {
		// The head's size: the snapshots add only their differences.
		if n, err := d.Usage(ctx, storage.Ref{Volume: head.Volume}); err == nil {
			opts.Progress.Expect(n)
		}
		add = opts.Progress.Add
	}
	bw, err := backup.NewWriter(w, opts.Compression, add)
	if err != nil {
		return err
	}
	if opts.Optimized {
		err = exportStreams(ctx, bw, x, driver, d, base, snaps, head.Volume)
	} else {
		err = exportTrees(ctx, bw, x, d, base, snaps, head, headShift)
	}
	if err == nil {
		err = bw.Close()
	}
	return err
}

// shifted says whether a head shifted on disk by head, or one of snaps,
// carries its instance's host IDs on disk.
func shifted(head *store.Shift, snaps []store.Snapshot) bool {
	return head != nil || slices.ContainsFunc(snaps, func(s store.Snapshot) bool { return s.Shift != nil })
}

// oneShift says whether a head shifted on disk by head and snaps all
// have their files shifted alike, or none of them shifted.
func oneShift(head *store.Shift, snaps []store.Snapshot) bool {
	return !slices.ContainsFunc(snaps, func(s store.Snapshot) bool { return !sameShift(s.Shift, head) })
}

// backupExtra is what a backup's index carries for the engine alone.
type backupExtra struct {
	Metadata  *image.Metadata   `json:"metadata,omitempty"`
	Templates map[string]string `json:"templates,omitempty"`
	Profiles  []string          `json:"profiles,omitempty"`
	Devices   store.Devices     `json:"devices,omitempty"`
	// Shift is how the files of optimized streams are shifted on disk
	// (ExportOptions.KeepShift); only a copy takes it.
	Shift *store.Shift `json:"shift,omitempty"`
}

// frozenHead returns a ref to the state of inst to export. A running
// instance is snapshotted first when snapshot is set, so that its tree
// holds still while it is read; release removes that snapshot.
func (e *Engine) frozenHead(ctx context.Context, inst *store.Instance, d storage.Driver, snapshot bool) (storage.Ref, func(), error) {
	run, err := e.liveRun(inst.Name)
	if err != nil || run == nil || !snapshot {
		return storage.Ref{Volume: inst.Volume}, func() {}, err
	}
	return e.freeze(ctx, d, inst.Pool, inst.Volume, inst.Name)
}

// freeze snapshots volume vol on pool, which target names, for a read;
// release removes the snapshot.
func (e *Engine) freeze(ctx context.Context, d storage.Driver, pool, vol, target string) (storage.Ref, func(), error) {
	head := storage.Ref{Volume: vol, Snapshot: newID("x-")}
	o, err := e.journal.Begin("freeze", target, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: head.Volume, Snapshot: head.Snapshot}}
		return nil
	})
	if err != nil {
		return head, nil, err
	}
	if err := d.CreateSnapshot(ctx, head); err != nil {
		return head, nil, o.Fail(ctx, fmt.Errorf("snapshot %s: %w", target, err))
	}
	return head, func() {
		if err := o.RollBack(ctx); err != nil {
			o.Warn("could not remove the snapshot an export took; the next silo command tries again", err)
		}
	}, nil
}

// exportTrees writes the portable form: each snapshot as the difference
// from the one before, then the head as the difference from the last,
// each with the IDs inside the instance (a volume shifted on disk is
// unshifted as it is read; headShift is the head's). The first is whole,
// or the difference from base when not nil.
func exportTrees(ctx context.Context, bw *backup.Writer, x *backup.Index, d storage.Driver, base *store.Snapshot, snaps []store.Snapshot, head storage.Ref, headShift *store.Shift) error {
	if err := bw.Index(x); err != nil {
		return err
	}
	prev, release := "", func() error { return nil }
	if base != nil {
		var err error
		if prev, release, err = d.OpenSnapshot(ctx, storage.Ref{Volume: base.Volume, Snapshot: base.ID}); err != nil {
			return err
		}
	}
	defer func() { release() }()
	for _, s := range snaps {
		root, rel, err := d.OpenSnapshot(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID})
		if err != nil {
			return err
		}
		if err := bw.Snapshot(ctx, s.Name, root, prev, inside(s.Shift)); err != nil {
			rel()
			return fmt.Errorf("snapshot %s: %w", s.Name, err)
		}
		release()
		prev, release = root, rel
	}
	root, rel, err := openRef(ctx, d, head)
	if err != nil {
		return err
	}
	defer rel()
	return bw.Root(ctx, root, prev, inside(headShift))
}

// openRef gives the root of a volume or of a snapshot until release.
func openRef(ctx context.Context, d storage.Volumes, ref storage.Ref) (string, func() error, error) {
	if ref.Snapshot != "" {
		return d.OpenSnapshot(ctx, ref)
	}
	root, err := d.VolumePath(ctx, ref.Volume)
	return root, func() error { return nil }, err
}

// exportStreams writes the optimized form: a driver stream per snapshot,
// then the head, chained as snapshot.Chain plans.
func exportStreams(ctx context.Context, bw *backup.Writer, x *backup.Index, driver string, d storage.Driver, base *store.Snapshot, snaps []store.Snapshot, head string) error {
	x.Optimized = driver
	sends := snapshot.Chain(modelSnapshots(snaps), head)
	if base != nil {
		// A refresh's: the first is incremental against the base, which
		// the receiver holds.
		sends[0].ParentID = base.ID
	}
	for _, s := range sends {
		x.Streams = append(x.Streams, backup.Stream{Snapshot: s.Snapshot, Parent: s.Parent})
	}
	if err := bw.Index(x); err != nil {
		return err
	}
	for k, s := range sends {
		ref := storage.Ref{Volume: s.Volume, Snapshot: s.ID}
		if err := bw.Stream(ctx, k, func(w io.Writer) error { return d.Send(ctx, ref, s.ParentID, w) }); err != nil {
			return err
		}
	}
	return nil
}

// Import makes an instance from the backup stream r, on pool (the default
// pool when empty), called name or, when empty, as in the backup. It
// unpacks as it reads; a bad stream leaves nothing behind.
func (e *Engine) Import(ctx context.Context, r io.Reader, name, pool string, keepAddresses bool) (*store.Instance, error) {
	return e.importInstance(ctx, r, name, pool, keepAddresses, false)
}

// importInstance is Import; asCopy makes the instance a copy instead,
// created now, with the identity and templates of a copy.
func (e *Engine) importInstance(ctx context.Context, r io.Reader, name, pool string, keepAddresses, asCopy bool) (*store.Instance, error) {
	if name != "" {
		if err := checkName("instance", name); err != nil {
			return nil, err
		}
	}
	pool, err := e.pool(ctx, pool)
	if err != nil {
		return nil, err
	}
	d, p, err := e.driver(ctx, pool)
	if err != nil {
		return nil, err
	}
	im := &importer{e: e, receiver: receiver{ctx: ctx, d: d, pool: p}, name: name, keepAddresses: keepAddresses, asCopy: asCopy}
	err = backup.Read(ctx, r, im)
	if im.o == nil {
		return nil, err
	}
	if err == nil && asCopy {
		err = identify(ctx, d, im.inst, image.WhenCopy)
	}
	if err != nil {
		return nil, im.o.Fail(ctx, fmt.Errorf("import %s: %w", im.inst.Name, err))
	}
	im.o.Step("received")
	return im.inst, im.o.Commit(ctx, func(tx *store.Tx) error { return putNewInstance(tx, im.inst) })
}

// receiver lands the trees and streams of a backup, as backup.Read hands
// them over, in new volumes of a pool, for an importer that says what
// they make: an instance or a custom volume.
type receiver struct {
	ctx  context.Context
	d    storage.Driver
	pool *store.Pool
	o    *journal.Op
	// The volumes landed: the head, the heads a restore had retired in
	// the source, the snapshots.
	head    string
	retired []string
	snaps   []store.Snapshot
	// receives says where each optimized stream lands.
	receives []snapshot.Receive
}

// land maps the snapshots and streams of backup x onto new volumes, whose
// IDs begin with prefix.
func (r *receiver) land(x *backup.Index, prefix string) error {
	if x.Optimized != "" && x.Optimized != r.pool.Driver {
		return errkind.Wrap(errkind.Invalid, "the backup holds optimized %s streams, which only a %s pool can receive; pool %q is %s: export it again without --optimized",
			x.Optimized, x.Optimized, r.pool.Name, r.pool.Driver)
	}
	var snaps []store.Snapshot
	for _, s := range x.Snapshots {
		if err := checkName("snapshot", s.Name); err != nil {
			return fmt.Errorf("the backup's snapshots: %w", err)
		}
		if s.UUID == "" {
			s.UUID = newUUID() // a backup silo wrote before snapshots had one
		}
		snaps = append(snaps, store.Snapshot{Name: s.Name, ID: newID("s-"), Created: s.Created, UUID: s.UUID, Expires: s.Expires})
	}
	streams := make([]snapshot.Stream, len(x.Streams))
	for k, st := range x.Streams {
		streams[k] = snapshot.Stream{Snapshot: st.Snapshot, Parent: st.Parent}
	}
	t, receives, err := snapshot.Land(modelSnapshots(snaps), streams, func() string { return newID(prefix) })
	if err != nil {
		return err
	}
	r.head, r.retired, r.snaps = fromTree(t, snaps)
	r.receives = receives
	return nil
}

// undo lists the volumes that land made up, for the journal to remove if
// the import fails.
func (r *receiver) undo() []store.VolumeRef {
	return treeRefs(r.pool.Name, r.head, r.retired, r.snaps)
}

func (r *receiver) TreeDone(i int) error {
	if i >= len(r.snaps) {
		// The root stays the head; it must be on disk before the
		// store records it.
		return syncVolume(r.ctx, r.d, r.head)
	}
	s := r.snaps[i]
	return r.d.CreateSnapshot(r.ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID})
}

func (r *receiver) Stream(k int, rd io.Reader) error {
	rc := r.receives[k]
	return r.d.Receive(r.ctx, storage.Ref{Volume: rc.Volume, Snapshot: rc.ID}, rc.ParentID, rd)
}

// importer builds an instance from a backup as backup.Read hands it over.
type importer struct {
	e *Engine
	receiver
	name string
	// keepAddresses keeps the MACs and addresses the backup's nics had.
	keepAddresses bool
	asCopy        bool
	inst          *store.Instance
}

func (im *importer) Begin(x *backup.Index) (string, idmap.Shift, error) {
	if x.Type != "" {
		return "", idmap.Shift{}, errkind.Wrap(errkind.Invalid, "the backup holds %s volume %q, not an instance: import it with silo volume import", x.Type, x.Name)
	}
	if im.name == "" {
		im.name = x.Name
	}
	if err := checkName("instance", im.name); err != nil {
		return "", idmap.Shift{}, fmt.Errorf("the backup's instance: %w", err)
	}
	for k, v := range x.Config {
		if err := checkConfig(k, v); err != nil && !isVolatile(k) {
			return "", idmap.Shift{}, fmt.Errorf("the backup's config: %w", err)
		}
	}
	inst := &store.Instance{Name: im.name, Image: x.Image, Pool: im.pool.Name,
		Config: maps.Clone(x.Config), Created: x.Created}
	if inst.Created.IsZero() || im.asCopy {
		inst.Created = time.Now().UTC()
	}
	var extra backupExtra
	if len(x.Extra) > 0 {
		if err := json.Unmarshal(x.Extra, &extra); err != nil {
			return "", idmap.Shift{}, errkind.Wrap(errkind.Invalid, "the backup's index: %w", err)
		}
		inst.Metadata, inst.Templates = metadataRecord(extra.Metadata), extra.Templates
		inst.Profiles, inst.Devices = extra.Profiles, extra.Devices
	}
	if inst.Profiles == nil {
		inst.Profiles = []string{store.DefaultProfile}
	}
	if !im.keepAddresses {
		freshNetwork(inst)
	}
	if err := im.e.store.View(func(tx *store.Tx) error { return fitRoot(tx, inst) }); err != nil {
		return "", idmap.Shift{}, fmt.Errorf("the backup's instance: %w", err)
	}
	if err := im.land(x, "i-"); err != nil {
		return "", idmap.Shift{}, err
	}
	inst.Volume, inst.Retired, inst.Snapshots = im.head, im.retired, im.snaps
	kind := "import"
	if im.asCopy {
		kind = "copy"
	}
	o, err := im.e.journal.Begin(kind, im.name, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = im.undo()
		if err := allocIdmap(tx, inst); err != nil {
			return err
		}
		return reserveInstance(tx, rec, im.name)
	})
	if err != nil {
		return "", idmap.Shift{}, err
	}
	im.o, im.inst = o, inst
	if x.Optimized != "" {
		// An optimized export is of unshifted files, but a copy's may
		// carry them shifted: the copy keeps the shift, which a start
		// fits to its map as for any instance.
		if extra.Shift != nil {
			inst.Shift = extra.Shift
			for i := range inst.Snapshots {
				inst.Snapshots[i].Shift = inst.Shift
			}
		}
		return "", idmap.Shift{}, nil
	}
	root, err := im.d.CreateVolume(im.ctx, inst.Volume)
	if err != nil {
		return "", idmap.Shift{}, err
	}
	// Where the pool cannot idmap, an unprivileged instance's trees are
	// shifted into its map as they are unpacked.
	m, err := im.e.instanceMapOf(inst)
	if err == nil {
		inst.Shift, err = im.e.diskShift(root, m)
	}
	if err != nil {
		return "", idmap.Shift{}, err
	}
	for i := range inst.Snapshots {
		inst.Snapshots[i].Shift = inst.Shift
	}
	return root, onDisk(inst.Shift), nil
}

// OpenTree gives the root of instance name, or of its snapshot snap, until
// release is called.
func (e *Engine) OpenTree(ctx context.Context, name, snap string) (root string, release func() error, err error) {
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return "", nil, err
	}
	ref := storage.Ref{Volume: inst.Volume}
	if snap != "" {
		s, err := inst.Snapshot(snap)
		if err != nil {
			return "", nil, err
		}
		ref = storage.Ref{Volume: s.Volume, Snapshot: s.ID}
	}
	return openRef(ctx, d, ref)
}
