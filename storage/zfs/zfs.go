// Package zfs is the storage driver on ZFS: an image base is a dataset with
// one snapshot, an instance a clone, a snapshot a ZFS snapshot, and streams
// are zfs send/receive.
//
// ZFS will not destroy a dataset or snapshot that clones depend on. A
// deleted snapshot with clones is renamed aside and destroyed deferred
// (`zfs destroy -d`), so ZFS itself removes it with its last clone; a
// deleted head that still has snapshots gets mountpoint=none, which both
// unmounts it for good and marks it deleted, and is destroyed once its last
// snapshot goes. A refresh's new head is a promoted clone that takes over
// its copy's older snapshots, so that incremental streams land in it
// (fork.go).
//
// The same code runs on OpenZFS and on zfs-fuse: it never relies on
// `zfs list -p` or on the properties zfs-fuse lacks, and sets one property
// per `zfs set`. On zfs-fuse alone, its commands run one at a time across
// the host (serial.go).
package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gozfs "github.com/mistifyio/go-zfs/v3"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/revert"
	"github.com/silo-dev/silo/internal/runcmd"
	"github.com/silo-dev/silo/storage"
)

const (
	sealedProp   = "silo:sealed" // zfs-fuse reports a mounted dataset's readonly as off
	sealedSnap   = "_sealed"     // the snapshot instances of an image are cloned from
	clonePrefix  = "_clone-"     // snapshot taken to clone a volume's head
	sendPrefix   = "_send-"      // snapshot taken to send a volume's head
	recvSnap     = "_recv"       // snapshot a head-only stream is received as
	deletePrefix = "_delete-"    // a deleted snapshot waiting for its clones to go
)

type driver struct {
	cfg  storage.Config
	root string // the dataset silo owns in the pool
	loop bool   // silo made the zpool on a file of its own
}

// New returns the zfs driver for cfg: on an existing zpool or dataset
// (cfg.Source), or on a new zpool in a file of cfg.Size bytes.
func New(cfg storage.Config) (storage.Driver, error) {
	switch {
	case cfg.Source != "" && cfg.Size != 0:
		return nil, errkind.Wrap(errkind.Invalid, "give a source or a size, not both")
	case cfg.Source == "" && cfg.Size == 0:
		return nil, errkind.Wrap(errkind.Invalid, "the zfs driver needs a source (a zpool or dataset) or a size (a new pool in a file)")
	}
	d := &driver{cfg: cfg, root: strings.Trim(cfg.Source, "/"), loop: cfg.Source == ""}
	if d.loop {
		d.root = d.zpool()
	}
	return d, nil
}

func (d *driver) zpool() string { return "silo-" + d.cfg.ID }

func (d *driver) volumesDS() string { return d.root + "/volumes" }
func (d *driver) tmpDS() string     { return d.root + "/tmp" }

func (d *driver) dataset(vol string) string { return d.volumesDS() + "/" + vol }

func (d *driver) name(ref storage.Ref) string {
	if ref.Snapshot == "" {
		return d.dataset(ref.Volume)
	}
	return d.dataset(ref.Volume) + "@" + ref.Snapshot
}

func (d *driver) mountpoint(vol string) string {
	return filepath.Join(d.cfg.MountDir(), "volumes", vol)
}

// untilNotBusy runs a zfs or zpool destroy, again while it finds the
// dataset busy for a moment: a mount namespace being made or torn down
// (a container starting or stopping) holds a copy of every mount for as
// long as that takes.
func untilNotBusy(ctx context.Context, cmd string, args ...string) error {
	for try := 0; ; try++ {
		_, err := run(ctx, runcmd.Cmd{Name: cmd, Args: args})
		if err == nil || try == 30 || !strings.Contains(err.Error(), "is busy") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// destroyDeferred destroys a snapshot now, or with its last clone.
func destroyDeferred(snap string) error {
	return goZFS(serially(func() error {
		return (&gozfs.Dataset{Name: snap}).Destroy(gozfs.DestroyDeferDeletion)
	}))
}

// goZFS maps a go-zfs error onto the same error type as runcmd's, so that
// errors.Is finds its kind.
func goZFS(err error) error {
	var ze *gozfs.Error
	if errors.As(err, &ze) {
		return &runcmd.Error{Cmd: ze.Debug, Stderr: ze.Stderr, Err: ze.Err}
	}
	return err
}

func (d *driver) Create(ctx context.Context) error {
	r := revert.New()
	defer r.Fail()
	if d.loop {
		file := d.cfg.DiskFile()
		if err := storage.CreateDiskFile(file, d.cfg.Size); err != nil {
			return err
		}
		r.Add(func() { os.Remove(file) })
		if _, err := zpool(ctx, "create", "-m", "none", d.zpool(), file); err != nil {
			return fmt.Errorf("create zpool: %w", err)
		}
		r.Add(func() { _, _ = zpool(context.Background(), "destroy", "-f", d.zpool()) })
	} else if _, err := zfs(ctx, "get", "-H", "-o", "value", "type", d.root); err != nil {
		return fmt.Errorf("source dataset %s: %w", d.root, err)
	}
	// The volumes mount below it.
	if err := storage.PrivateDir(d.cfg.MountDir()); err != nil {
		return err
	}
	r.Add(func() { os.Remove(d.cfg.MountDir()) })
	for _, ds := range []struct{ name, mnt string }{
		{d.volumesDS(), filepath.Join(d.cfg.MountDir(), "volumes")},
		{d.tmpDS(), filepath.Join(d.cfg.MountDir(), "tmp")},
	} {
		if _, err := zfs(ctx, "create", "-o", "canmount=off", "-o", "mountpoint="+ds.mnt, ds.name); err != nil {
			if errors.Is(err, errkind.AlreadyExists) {
				return errkind.Wrap(errkind.AlreadyExists, "dataset %s is already in use by a pool", ds.name)
			}
			return fmt.Errorf("create pool: %w", err)
		}
		name := ds.name
		r.Add(func() { _, _ = zfs(context.Background(), "destroy", name) })
	}
	r.Success()
	return nil
}

func (d *driver) Mount(ctx context.Context) error {
	if d.loop {
		if _, err := zpool(ctx, "list", "-H", "-o", "name", d.zpool()); err != nil {
			if _, err := zpool(ctx, "import", "-d", filepath.Dir(d.cfg.DiskFile()), d.zpool()); err != nil {
				return fmt.Errorf("import zpool %s: %w", d.zpool(), err)
			}
		}
	}
	if err := storage.PrivateDir(d.cfg.MountDir()); err != nil {
		return err
	}
	// Views of snapshots that a killed command left open.
	out, err := zfs(ctx, "list", "-H", "-o", "name", "-r", d.tmpDS())
	if err != nil {
		return fmt.Errorf("mount pool: %w", err)
	}
	for _, ds := range strings.Fields(out) {
		if ds != d.tmpDS() {
			if err := d.destroy(ctx, ds); err != nil {
				return err
			}
		}
	}
	// Snapshots of heads that killed sends took.
	if out, err = zfs(ctx, "list", "-H", "-o", "name", "-t", "snapshot", "-r", d.volumesDS()); err != nil {
		return fmt.Errorf("mount pool: %w", err)
	}
	for _, snap := range strings.Fields(out) {
		if _, name, _ := strings.Cut(snap, "@"); strings.HasPrefix(name, sendPrefix) {
			if _, err := zfs(ctx, "destroy", snap); err != nil {
				return fmt.Errorf("mount pool: %w", err)
			}
		}
	}
	return nil
}

// kstatDir is where OpenZFS lists the imported zpools, one directory
// each; zfs-fuse has no such list.
const kstatDir = "/proc/spl/kstat/zfs"

// Ready checks that the pool's zpool is imported, where one stat can tell
// (OpenZFS). On zfs-fuse only a zfs command could, which would cost every
// command some 10 ms; there the first zfs command finds out.
func (d *driver) Ready(ctx context.Context) error {
	zp, _, _ := strings.Cut(d.root, "/")
	if _, err := os.Stat(filepath.Join(kstatDir, zp)); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(kstatDir); err == nil {
			return errkind.Wrap(errkind.Unavailable, "zpool %s is not imported: import it again, then retry", zp)
		}
	}
	return nil
}

func (d *driver) Destroy(ctx context.Context) error {
	out, err := zfs(ctx, "list", "-H", "-o", "name", "-t", "all", "-r", d.volumesDS())
	if err != nil {
		return fmt.Errorf("destroy pool: %w", err)
	}
	if left := len(strings.Fields(out)) - 1; left > 0 {
		return errkind.Wrap(errkind.Busy, "pool still holds %d datasets or snapshots", left)
	}
	if err := d.Mount(ctx); err != nil { // clears snapshot views
		return err
	}
	for _, ds := range []string{d.volumesDS(), d.tmpDS()} {
		if err := untilNotBusy(ctx, "zfs", "destroy", ds); err != nil {
			return fmt.Errorf("destroy pool: %w", err)
		}
	}
	if d.loop {
		if err := untilNotBusy(ctx, "zpool", "destroy", d.zpool()); err != nil {
			return fmt.Errorf("destroy zpool: %w", err)
		}
		if err := os.Remove(d.cfg.DiskFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, dir := range []string{filepath.Join(d.cfg.MountDir(), "volumes"), filepath.Join(d.cfg.MountDir(), "tmp"), d.cfg.MountDir()} {
		if err := fsutil.RemoveIfEmpty(dir); err != nil {
			return err
		}
	}
	return nil
}

// notFound turns zfs's "does not exist" into errkind.NotFound about ref.
func notFound(err error, ref storage.Ref) error {
	if errors.Is(err, errkind.NotFound) {
		if ref.Snapshot != "" {
			return errkind.Wrap(errkind.NotFound, "snapshot %s not found", ref)
		}
		return errkind.Wrap(errkind.NotFound, "volume %s not found", ref)
	}
	if errors.Is(err, errkind.AlreadyExists) {
		return errkind.Wrap(errkind.AlreadyExists, "%s already exists", ref)
	}
	return err
}

func (d *driver) CreateVolume(ctx context.Context, vol string) (string, error) {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return "", err
	}
	if _, err := zfs(ctx, "create", d.dataset(vol)); err != nil {
		return "", notFound(err, ref)
	}
	return d.VolumePath(ctx, vol)
}

func (d *driver) SealVolume(ctx context.Context, vol string) error {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return err
	}
	ds := &gozfs.Dataset{Name: d.dataset(vol)}
	for _, prop := range []string{"readonly", sealedProp} {
		if err := serially(func() error { return ds.SetProperty(prop, "on") }); err != nil {
			return notFound(goZFS(err), ref)
		}
	}
	if _, err := zfs(ctx, "snapshot", d.dataset(vol)+"@"+sealedSnap); err != nil {
		return notFound(err, ref)
	}
	return nil
}

func (d *driver) CloneVolume(ctx context.Context, src storage.Ref, dst string) error {
	if err := storage.CheckRef(src, false); err != nil {
		return err
	}
	if err := storage.CheckID("volume", dst); err != nil {
		return err
	}
	dstRef := storage.Ref{Volume: dst}
	if src.Snapshot != "" {
		return d.clone(ctx, d.name(src), dst, src)
	}
	// An image base is cloned from its sealed snapshot: one command.
	err := d.clone(ctx, d.dataset(src.Volume)+"@"+sealedSnap, dst, src)
	if !errors.Is(err, errkind.NotFound) {
		return err
	}
	// Any other head: snapshot it for the clone, and let ZFS destroy that
	// snapshot by itself when the clone goes.
	snap := d.dataset(src.Volume) + "@" + clonePrefix + storage.Unique()
	if _, err := zfs(ctx, "snapshot", snap); err != nil {
		return notFound(err, src)
	}
	if err := d.clone(ctx, snap, dst, src); err != nil {
		_, _ = zfs(context.WithoutCancel(ctx), "destroy", snap)
		return err
	}
	if err := destroyDeferred(snap); err != nil {
		return fmt.Errorf("clone %s to %s: %w", src, dstRef, err)
	}
	return nil
}

func (d *driver) clone(ctx context.Context, snap, dst string, src storage.Ref) error {
	if _, err := zfs(ctx, "clone", snap, d.dataset(dst)); err != nil {
		if errors.Is(err, errkind.AlreadyExists) {
			return notFound(err, storage.Ref{Volume: dst})
		}
		return notFound(err, src)
	}
	return nil
}

// dsProps is what deletion and collection decide by.
type dsProps struct {
	origin    string // the snapshot this dataset was cloned from, if any
	deleted   bool   // a deleted head kept for its snapshots: mountpoint=none
	sealed    bool   // an image base
	snapshots int    // how many snapshots it has, deferred ones included
	received  bool   // a receive cut short left its snapshot of the head
}

// props reads them, and counts the snapshots, in one command.
func (d *driver) props(ctx context.Context, ds string) (dsProps, error) {
	var p dsProps
	out, err := zfs(ctx, "get", "-H", "-r", "-o", "name,property,value", "origin,mountpoint,"+sealedProp, ds)
	if err != nil {
		return p, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		if f[0] != ds {
			if f[1] == "origin" && strings.HasPrefix(f[0], ds+"@") {
				p.snapshots++
				p.received = p.received || f[0] == ds+"@"+recvSnap
			}
			continue
		}
		switch f[1] {
		case "origin":
			if f[2] != "-" {
				p.origin = f[2]
			}
		case "mountpoint":
			p.deleted = f[2] == "none"
		case sealedProp:
			p.sealed = f[2] == "on"
		}
	}
	return p, nil
}

func (d *driver) DeleteVolume(ctx context.Context, vol string) error {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return err
	}
	ds := d.dataset(vol)
	p, err := d.props(ctx, ds)
	if err != nil {
		return notFound(err, ref)
	}
	if p.deleted {
		return notFound(errkind.NotFound, ref)
	}
	if p.received {
		// Nothing else holds it: it would keep the head for good.
		if _, err := zfs(ctx, "destroy", ds+"@"+recvSnap); err != nil {
			return fmt.Errorf("delete %s: %w", vol, err)
		}
		p.snapshots--
	}
	if p.sealed {
		// An image base's own snapshot goes with its last clone, or now.
		if err := destroyDeferred(ds + "@" + sealedSnap); err != nil && !errors.Is(err, errkind.NotFound) {
			return fmt.Errorf("delete %s: %w", vol, err)
		}
	}
	// Without snapshots the head goes now; an image base learns whether its
	// sealed snapshot went by trying.
	if p.snapshots == 0 || p.sealed {
		err := d.destroy(ctx, ds)
		if err == nil {
			return d.collect(ctx, p.origin)
		}
		if !hasDependants(err) {
			return fmt.Errorf("delete %s: %w", vol, err)
		}
	}
	// Snapshots remain: unmount the head for good until the last of them goes.
	if _, err := zfs(ctx, "set", "mountpoint=none", ds); err != nil {
		return fmt.Errorf("delete %s: %w", vol, err)
	}
	return nil
}

func hasDependants(err error) bool {
	var re *runcmd.Error
	if !errors.As(err, &re) {
		return false
	}
	return strings.Contains(re.Stderr, "has children") || strings.Contains(re.Stderr, "dependent clones")
}

func (d *driver) unmount(ctx context.Context, ds string) error {
	if _, err := zfs(ctx, "unmount", ds); err != nil && !strings.Contains(err.Error(), "not currently mounted") {
		return fmt.Errorf("unmount %s: %w", ds, err)
	}
	return nil
}

// destroy unmounts and destroys a dataset that nothing depends on.
func (d *driver) destroy(ctx context.Context, ds string) error {
	if err := d.unmount(ctx, ds); err != nil {
		return err
	}
	if err := untilNotBusy(ctx, "zfs", "destroy", ds); err != nil {
		return fmt.Errorf("destroy %s: %w", ds, err)
	}
	return nil
}

// collect follows a chain of origins from snapshot origin upwards, and
// destroys each deleted head whose last snapshot is gone. ZFS itself has
// destroyed the deferred snapshots whose last clone went.
func (d *driver) collect(ctx context.Context, origin string) error {
	for origin != "" {
		ds, _, _ := strings.Cut(origin, "@")
		p, err := d.props(ctx, ds)
		if err != nil || !p.deleted || p.snapshots > 0 {
			return nil // still in use, or already gone
		}
		if err := untilNotBusy(ctx, "zfs", "destroy", ds); err != nil {
			return fmt.Errorf("collect %s: %w", ds, err)
		}
		origin = p.origin
	}
	return nil
}

func (d *driver) VolumePath(ctx context.Context, vol string) (string, error) {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return "", err
	}
	mnt := d.mountpoint(vol)
	if mounted, err := fsutil.IsMountPoint(mnt); err != nil || mounted {
		return mnt, err
	}
	p, err := d.props(ctx, d.dataset(vol))
	if err != nil {
		return "", notFound(err, ref)
	}
	if p.deleted {
		return "", notFound(errkind.NotFound, ref)
	}
	if _, err := zfs(ctx, "mount", d.dataset(vol)); err != nil {
		return "", fmt.Errorf("mount %s: %w", vol, err)
	}
	return mnt, nil
}

func (d *driver) CreateSnapshot(ctx context.Context, snap storage.Ref) error {
	if err := storage.CheckRef(snap, true); err != nil {
		return err
	}
	if _, err := zfs(ctx, "snapshot", d.name(snap)); err != nil {
		if errors.Is(err, errkind.AlreadyExists) {
			return notFound(err, snap)
		}
		return notFound(err, storage.Ref{Volume: snap.Volume})
	}
	return nil
}

func (d *driver) DeleteSnapshot(ctx context.Context, snap storage.Ref) error {
	if err := storage.CheckRef(snap, true); err != nil {
		return err
	}
	_, err := zfs(ctx, "destroy", d.name(snap))
	switch {
	case err == nil:
	case hasDependants(err):
		// Clones still use it: free the name now, let ZFS destroy it with its last clone.
		aside := d.dataset(snap.Volume) + "@" + deletePrefix + storage.Unique()
		if _, err := zfs(ctx, "rename", d.name(snap), aside); err != nil {
			return fmt.Errorf("delete %s: %w", snap, err)
		}
		if err := destroyDeferred(aside); err != nil {
			return fmt.Errorf("delete %s: %w", snap, err)
		}
		return nil
	default:
		return notFound(err, snap)
	}
	// The head may be a deleted one waiting for this last snapshot.
	return d.collect(ctx, d.name(snap))
}

func (d *driver) OpenSnapshot(ctx context.Context, snap storage.Ref) (string, func() error, error) {
	if err := storage.CheckRef(snap, true); err != nil {
		return "", nil, err
	}
	// zfs-fuse has no .zfs/snapshot directory: a read-only clone serves on both.
	id := storage.Unique()
	ds := d.tmpDS() + "/" + id
	if _, err := zfs(ctx, "clone", "-o", "readonly=on", d.name(snap), ds); err != nil {
		return "", nil, notFound(err, snap)
	}
	release := func() error { return d.destroy(context.WithoutCancel(ctx), ds) }
	mnt := filepath.Join(d.cfg.MountDir(), "tmp", id)
	if mounted, _ := fsutil.IsMountPoint(mnt); !mounted {
		if _, err := zfs(ctx, "mount", ds); err != nil {
			_ = release()
			return "", nil, fmt.Errorf("open %s: %w", snap, err)
		}
	}
	return mnt, release, nil
}

// RetireHead sets aside a head that a restore replaced while snapshots
// still live in it. ZFS keeps a deleted head's blocks until its last
// snapshot goes anyway, so the head stays until then, only unmounted: heads
// must not pile up as mounts, one per restore. VolumePath mounts it again
// if asked. A plain unmount(2) does it: ZFS reads what is mounted from the
// mount table, and on zfs-fuse `zfs unmount` would cost 15 ms more. It
// takes zfs-fuse's lock all the same, as the daemon serves the unmount.
func (d *driver) RetireHead(ctx context.Context, vol string) error {
	if err := storage.CheckRef(storage.Ref{Volume: vol}, false); err != nil {
		return err
	}
	mnt := d.mountpoint(vol)
	if mounted, err := fsutil.IsMountPoint(mnt); err != nil || !mounted {
		return err
	}
	if err := serially(func() error { return unix.Unmount(mnt, 0) }); err != nil {
		return fmt.Errorf("unmount %s: %w", vol, err)
	}
	return nil
}

func (d *driver) List(ctx context.Context) ([]storage.Ref, error) {
	out, err := zfs(ctx, "get", "-H", "-r", "-o", "name,value", "mountpoint", d.volumesDS())
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var refs []storage.Ref
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, _ := strings.Cut(line, "\t")
		rel, ok := strings.CutPrefix(name, d.volumesDS()+"/")
		if !ok {
			continue // the volumes dataset itself
		}
		vol, snap, isSnap := strings.Cut(rel, "@")
		switch {
		case isSnap && strings.HasPrefix(snap, "_"):
			// the driver's own: sealed, clone, send, deleted snapshots
		case isSnap:
			refs = append(refs, storage.Ref{Volume: vol, Snapshot: snap})
		case value != "none":
			refs = append(refs, storage.Ref{Volume: vol})
		}
	}
	return refs, nil
}

func (d *driver) Usage(ctx context.Context, ref storage.Ref) (int64, error) {
	if err := storage.CheckRef(ref, false); err != nil {
		return 0, err
	}
	out, err := zfs(ctx, "get", "-Hp", "-o", "value", "used", d.name(ref))
	if err != nil {
		return 0, notFound(err, ref)
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

func (d *driver) Send(ctx context.Context, src storage.Ref, parent string, w io.Writer) error {
	if err := storage.CheckRef(src, false); err != nil {
		return err
	}
	snap := &gozfs.Dataset{Name: d.name(src), Type: gozfs.DatasetSnapshot}
	if src.Snapshot == "" {
		// zfs sends snapshots only: freeze the head first.
		snap.Name = d.dataset(src.Volume) + "@" + sendPrefix + storage.Unique()
		if _, err := zfs(ctx, "snapshot", snap.Name); err != nil {
			return notFound(err, src)
		}
		defer zfs(context.WithoutCancel(ctx), "destroy", snap.Name)
	}
	release, err := hold()
	if err != nil {
		return err
	}
	defer release()
	w = releaseOnWrite{w: w, release: release}
	if parent == "" {
		err = snap.SendSnapshot(w)
	} else {
		base := &gozfs.Dataset{Name: d.dataset(src.Volume) + "@" + parent, Type: gozfs.DatasetSnapshot}
		err = snap.IncrementalSend(base, w)
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", src, notFound(goZFS(err), src))
	}
	return nil
}

func (d *driver) Receive(ctx context.Context, dst storage.Ref, parent string, r io.Reader) error {
	if err := storage.CheckRef(dst, false); err != nil {
		return err
	}
	snap := dst.Snapshot
	if snap == "" {
		snap = recvSnap
	}
	target := d.dataset(dst.Volume) + "@" + snap
	args := []string{"receive", target}
	if parent != "" {
		// -F drops what changed in the head since parent, its newest snapshot.
		args = []string{"receive", "-F", target}
	}
	if err := receive(ctx, args, r); err != nil {
		if errors.Is(err, errkind.AlreadyExists) {
			return notFound(err, dst)
		}
		return errkind.Wrap(errkind.Invalid, "receive %s: %w", dst, err)
	}
	if dst.Snapshot == "" {
		if _, err := zfs(ctx, "destroy", target); err != nil {
			return fmt.Errorf("receive %s: %w", dst, err)
		}
	}
	_, err := d.VolumePath(ctx, dst.Volume)
	return err
}
