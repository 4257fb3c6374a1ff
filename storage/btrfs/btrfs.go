// Package btrfs is the storage driver on btrfs: an image base is a
// read-only subvolume, an instance a writable snapshot of it, a snapshot a
// read-only snapshot, and streams are btrfs send/receive. Subvolumes do not
// depend on each other, so any of them can be deleted at any time.
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	cbtrfs "github.com/containerd/btrfs/v2"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/revert"
	"github.com/silo-dev/silo/internal/runcmd"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/fslayout"
)

type driver struct {
	cfg    storage.Config
	layout fslayout.Layout
	loop   bool // silo owns a loop file and mounts it at the root
}

// New returns the btrfs driver for cfg: on an existing btrfs mount
// (cfg.Source), or on a new loop file of cfg.Size bytes.
func New(cfg storage.Config) (storage.Driver, error) {
	switch {
	case cfg.Source != "" && cfg.Size != 0:
		return nil, errkind.Wrap(errkind.Invalid, "give a source or a size, not both")
	case cfg.Source == "" && cfg.Size == 0:
		return nil, errkind.Wrap(errkind.Invalid, "the btrfs driver needs a source (a btrfs mount) or a size (a new loop file)")
	}
	d := &driver{cfg: cfg, layout: fslayout.Layout{Root: cfg.Source}, loop: cfg.Source == ""}
	if d.loop {
		d.layout.Root = cfg.MountDir()
	}
	return d, nil
}

func checkBtrfs(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("source %s: %w", path, errkind.FromErrno(err))
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC {
		return errkind.Wrap(errkind.Invalid, "source %s is not on a btrfs filesystem", path)
	}
	return nil
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
		if _, err := runcmd.Run(ctx, "mkfs.btrfs", "-q", file); err != nil {
			return fmt.Errorf("format %s: %w", file, err)
		}
		if err := os.MkdirAll(d.layout.Root, 0o711); err != nil {
			return err
		}
		r.Add(func() { os.Remove(d.layout.Root) })
		if err := d.mountLoop(ctx); err != nil {
			return err
		}
		r.Add(func() { _, _ = runcmd.Run(context.Background(), "umount", d.layout.Root) })
	}
	if err := checkBtrfs(d.layout.Root); err != nil {
		return err
	}
	if err := d.layout.Init(); err != nil {
		return err
	}
	r.Success()
	return nil
}

func (d *driver) mountLoop(ctx context.Context) error {
	if _, err := runcmd.Run(ctx, "mount", "-t", "btrfs", "-o", "loop", d.cfg.DiskFile(), d.layout.Root); err != nil {
		return fmt.Errorf("mount %s: %w", d.cfg.DiskFile(), err)
	}
	return nil
}

func (d *driver) Mount(ctx context.Context) error {
	if d.loop {
		mounted, err := fsutil.IsMountPoint(d.layout.Root)
		if err != nil {
			return err
		}
		if !mounted {
			if err := os.MkdirAll(d.layout.Root, 0o711); err != nil {
				return err
			}
			if err := d.mountLoop(ctx); err != nil {
				return err
			}
		}
	}
	if err := checkBtrfs(d.layout.Root); err != nil {
		return err
	}
	if err := d.layout.Init(); err != nil {
		return err
	}
	debris, err := d.layout.Sweep()
	if err != nil {
		return err
	}
	for _, p := range debris {
		if err := removeTree(p); err != nil {
			return fmt.Errorf("sweep %s: %w", p, err)
		}
	}
	return nil
}

// Ready checks that the btrfs filesystem is mounted at the pool's root,
// be it silo's loop file or the source.
func (d *driver) Ready(ctx context.Context) error {
	return d.layout.Ready(unix.BTRFS_SUPER_MAGIC)
}

// removeTree removes p whether it is a subvolume or a directory holding some.
func removeTree(p string) error {
	if cbtrfs.IsSubvolume(p) == nil {
		return deleteSubvol(p)
	}
	entries, err := os.ReadDir(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := removeTree(filepath.Join(p, e.Name())); err != nil {
			return err
		}
	}
	return os.RemoveAll(p)
}

func (d *driver) Destroy(ctx context.Context) error {
	if err := d.layout.Remove(); err != nil {
		return err
	}
	if !d.loop {
		return nil
	}
	if mounted, _ := fsutil.IsMountPoint(d.layout.Root); mounted {
		if _, err := runcmd.Run(ctx, "umount", d.layout.Root); err != nil {
			return fmt.Errorf("unmount pool: %w", err)
		}
	}
	if err := os.Remove(d.cfg.DiskFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fsutil.RemoveIfEmpty(d.layout.Root)
}

func (d *driver) CreateVolume(ctx context.Context, vol string) (string, error) {
	ref := storage.Ref{Volume: vol}
	if err := d.layout.Absent(ref); err != nil {
		return "", err
	}
	p := d.layout.Volume(vol)
	if err := cbtrfs.SubvolCreate(p); err != nil {
		return "", fmt.Errorf("create volume %s: %w", vol, err)
	}
	return p, nil
}

func (d *driver) SealVolume(ctx context.Context, vol string) error {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return err
	}
	if err := setReadOnly(p, true); err != nil {
		return err
	}
	// What filled the volume must be on disk before the store records it.
	return fsutil.SyncFS(p)
}

// snapshot makes dst, a snapshot of the subvolume src, in one atomic and
// durable step: the kernel commits a transaction to make a snapshot.
func (d *driver) snapshot(src storage.Ref, dst storage.Ref, readonly bool) error {
	from, err := d.layout.Existing(src)
	if err != nil {
		return err
	}
	if err := d.layout.Absent(dst); err != nil {
		return err
	}
	to := d.layout.Path(dst)
	if dst.Snapshot != "" {
		if err := os.MkdirAll(filepath.Dir(to), 0o711); err != nil {
			return err
		}
	}
	if err := cbtrfs.SubvolSnapshot(to, from, readonly); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return errkind.Wrap(errkind.AlreadyExists, "%s already exists", dst)
		}
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return nil
}

func (d *driver) CloneVolume(ctx context.Context, src storage.Ref, dst string) error {
	return d.snapshot(src, storage.Ref{Volume: dst}, false)
}

func (d *driver) DeleteVolume(ctx context.Context, vol string) error {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return err
	}
	info, err := cbtrfs.SubvolInfo(p)
	if err != nil {
		return fmt.Errorf("subvolume of %s: %w", vol, err)
	}
	if err := deleteSubvol(p); err != nil {
		return err
	}
	d.dropQuota(info.ID)
	return nil
}

func (d *driver) VolumePath(ctx context.Context, vol string) (string, error) {
	return d.layout.Existing(storage.Ref{Volume: vol})
}

func (d *driver) CreateSnapshot(ctx context.Context, snap storage.Ref) error {
	if err := storage.CheckRef(snap, true); err != nil {
		return err
	}
	return d.snapshot(storage.Ref{Volume: snap.Volume}, snap, true)
}

func (d *driver) DeleteSnapshot(ctx context.Context, snap storage.Ref) error {
	return d.layout.DeleteSnapshot(snap, deleteSubvol)
}

func (d *driver) OpenSnapshot(ctx context.Context, snap storage.Ref) (string, func() error, error) {
	return d.layout.OpenSnapshot(snap)
}

func (d *driver) List(ctx context.Context) ([]storage.Ref, error) {
	return d.layout.List()
}

func (d *driver) Usage(ctx context.Context, ref storage.Ref) (int64, error) {
	return d.layout.Usage(ref)
}

func (d *driver) Send(ctx context.Context, src storage.Ref, parent string, w io.Writer) error {
	from, err := d.layout.Existing(src)
	if err != nil {
		return err
	}
	if src.Snapshot == "" {
		// btrfs sends read-only subvolumes only: freeze the head first.
		tmp := d.layout.Staging(src)
		if err := cbtrfs.SubvolSnapshot(tmp, from, true); err != nil {
			return fmt.Errorf("send %s: %w", src, err)
		}
		defer deleteSubvol(tmp)
		from = tmp
	}
	args := []string{"send", "-q"}
	if parent != "" {
		p, err := d.layout.Existing(storage.Ref{Volume: src.Volume, Snapshot: parent})
		if err != nil {
			return err
		}
		args = append(args, "-p", p)
	}
	args = append(args, from)
	if _, err := (runcmd.Cmd{Name: "btrfs", Args: args, Stdout: w}).Run(ctx); err != nil {
		return fmt.Errorf("send %s: %w", src, err)
	}
	return nil
}

func (d *driver) Receive(ctx context.Context, dst storage.Ref, parent string, r io.Reader) error {
	if err := storage.CheckRef(dst, false); err != nil {
		return err
	}
	head := storage.Ref{Volume: dst.Volume}
	if parent == "" {
		if err := d.layout.Absent(head); err != nil {
			return err
		}
	} else {
		if _, err := d.layout.Existing(head); err != nil {
			return err
		}
		if _, err := d.layout.Existing(storage.Ref{Volume: dst.Volume, Snapshot: parent}); err != nil {
			return err
		}
	}
	return d.receive(ctx, dst, parent != "", r)
}

// StreamID names the state snapshot snap holds as btrfs's streams name
// it: by the UUID of the subvolume it was received from, or by its own.
// btrfs receive finds an incremental stream's parent so, on the
// filesystem it receives into.
func (d *driver) StreamID(ctx context.Context, snap storage.Ref) (string, error) {
	if err := storage.CheckRef(snap, true); err != nil {
		return "", err
	}
	p, err := d.layout.Existing(snap)
	if err != nil {
		return "", err
	}
	info, err := cbtrfs.SubvolInfo(p)
	if err != nil {
		return "", fmt.Errorf("subvolume of %s: %w", snap, err)
	}
	if info.ReceivedUUID != "" {
		return info.ReceivedUUID, nil
	}
	return info.UUID, nil
}

// ReceiveOnto receives, as the new volume dst.Volume, a stream made
// against a snapshot whose StreamID is base's: btrfs receive starts from
// whichever subvolume of the pool has that ID, base or one as good.
func (d *driver) ReceiveOnto(ctx context.Context, dst, base storage.Ref, r io.Reader) error {
	if err := storage.CheckRef(dst, false); err != nil {
		return err
	}
	if err := d.layout.Absent(storage.Ref{Volume: dst.Volume}); err != nil {
		return err
	}
	if err := storage.CheckRef(base, true); err != nil {
		return err
	}
	if _, err := d.layout.Existing(base); err != nil {
		return err
	}
	return d.receive(ctx, dst, false, r)
}

// receive reads a stream into dst.Volume, as its new head (replacing the
// one it has when swap is set), and as snapshot dst.Snapshot when set.
func (d *driver) receive(ctx context.Context, dst storage.Ref, swap bool, r io.Reader) error {
	head := storage.Ref{Volume: dst.Volume}
	if dst.Snapshot != "" {
		if err := d.layout.Absent(dst); err != nil {
			return err
		}
	}
	rv := revert.New()
	defer rv.Fail()
	dir := d.layout.Staging(dst)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	rv.Add(func() { _ = removeTree(dir) })
	if _, err := (runcmd.Cmd{Name: "btrfs", Args: []string{"receive", "-e", dir}, Stdin: r}).Run(ctx); err != nil {
		return errkind.Wrap(errkind.Invalid, "receive %s: %w", dst, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) != 1 {
		return errkind.Wrap(errkind.Invalid, "receive %s: the stream held %d subvolumes, not one", dst, len(entries))
	}
	received := filepath.Join(dir, entries[0].Name())
	if dst.Snapshot != "" {
		// A read-only subvolume cannot change parent directory: lift the
		// flag for the move. The received UUID, which later incremental
		// streams find their parent by, is kept.
		if err := setReadOnly(received, false); err != nil {
			return err
		}
		if err := d.layout.Publish(received, dst); err != nil {
			return err
		}
		if err := setReadOnly(d.layout.Path(dst), true); err != nil {
			_ = deleteSubvol(d.layout.Path(dst))
			return err
		}
		rv.Add(func() { _ = deleteSubvol(d.layout.Path(dst)) })
		received = d.layout.Path(dst)
	}
	staged := d.layout.Staging(head)
	if err := cbtrfs.SubvolSnapshot(staged, received, false); err != nil {
		return fmt.Errorf("receive %s: %w", dst, err)
	}
	rv.Add(func() { _ = deleteSubvol(staged) })
	if !swap {
		if err := d.layout.Publish(staged, head); err != nil {
			return err
		}
	} else {
		old, err := d.layout.Swap(staged, dst.Volume)
		if err != nil {
			return err
		}
		_ = deleteSubvol(old)
	}
	rv.Success()
	_ = removeTree(dir)
	return nil
}
