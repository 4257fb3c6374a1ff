// Package dir is the storage driver that keeps volumes as plain directories
// on any filesystem. Clones and snapshots are copies: by reflink where the
// filesystem shares extents, else a parallel copy that keeps all metadata.
// Streams are tar, with whiteouts for incremental ones.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/copytree"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/revert"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/fslayout"
)

type driver struct {
	cfg    storage.Config
	layout fslayout.Layout
}

// New returns the dir driver for cfg. Its root is cfg.Source, an existing
// directory, or a directory under the state directory.
func New(cfg storage.Config) (storage.Driver, error) {
	root := cfg.Source
	if root == "" {
		root = cfg.MountDir()
	}
	if cfg.Size != 0 {
		return nil, errkind.Wrap(errkind.Invalid, "the dir driver takes no size")
	}
	return &driver{cfg: cfg, layout: fslayout.Layout{Root: root}}, nil
}

func (d *driver) Create(ctx context.Context) error {
	root := d.layout.Root
	if d.cfg.Source != "" {
		st, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("source %s: %w", root, errkind.FromErrno(err))
		}
		if !st.IsDir() {
			return errkind.Wrap(errkind.Invalid, "source %s is not a directory", root)
		}
	} else if err := os.MkdirAll(root, 0o711); err != nil {
		return err
	}
	return d.layout.Init()
}

func (d *driver) Mount(ctx context.Context) error {
	if _, err := os.Stat(d.layout.Root); err != nil {
		return fmt.Errorf("pool directory %s: %w", d.layout.Root, errkind.FromErrno(err))
	}
	if err := d.layout.Init(); err != nil {
		return err
	}
	debris, err := d.layout.Sweep()
	if err != nil {
		return err
	}
	for _, p := range debris {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("sweep %s: %w", p, err)
		}
	}
	return nil
}

// Ready checks that the pool's directory is there: a source directory
// may be on a filesystem that was unmounted.
func (d *driver) Ready(ctx context.Context) error { return d.layout.Ready(0) }

func (d *driver) Destroy(ctx context.Context) error {
	if err := d.layout.Remove(); err != nil {
		return err
	}
	if d.cfg.Source == "" {
		return fsutil.RemoveIfEmpty(d.layout.Root)
	}
	return nil
}

func (d *driver) CreateVolume(ctx context.Context, vol string) (string, error) {
	ref := storage.Ref{Volume: vol}
	if err := d.layout.Absent(ref); err != nil {
		return "", err
	}
	if err := os.Mkdir(d.layout.Volume(vol), 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", errkind.Wrap(errkind.AlreadyExists, "volume %s already exists", vol)
		}
		return "", err
	}
	return d.layout.Volume(vol), nil
}

// SealVolume only makes what filled the volume durable, before the store
// records it: a plain directory cannot be made read-only without changing
// what it holds, and silo never writes into an image base.
func (d *driver) SealVolume(ctx context.Context, vol string) error {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return err
	}
	return fsutil.SyncFS(p)
}

// copyTo copies src into a staging tree and publishes it as dst.
func (d *driver) copyTo(ctx context.Context, src storage.Ref, dst storage.Ref) error {
	from, err := d.layout.Existing(src)
	if err != nil {
		return err
	}
	if err := d.layout.Absent(dst); err != nil {
		return err
	}
	staged := d.layout.Staging(dst)
	if err := copytree.Copy(ctx, from, staged); err != nil {
		_ = os.RemoveAll(staged)
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := d.layout.Publish(staged, dst); err != nil {
		_ = os.RemoveAll(staged)
		return err
	}
	return nil
}

func (d *driver) CloneVolume(ctx context.Context, src storage.Ref, dst string) error {
	return d.copyTo(ctx, src, storage.Ref{Volume: dst})
}

// trash moves a tree out of sight at once, then removes it.
func (d *driver) trash(p string) error {
	trashed, err := d.layout.ToTrash(p)
	if err != nil {
		return err
	}
	return os.RemoveAll(trashed)
}

func (d *driver) DeleteVolume(ctx context.Context, vol string) error {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return err
	}
	// A limit left on the project would keep its ID from being picked again.
	if err := d.SetQuota(ctx, vol, 0); err != nil && !errors.Is(err, errkind.Invalid) {
		return err
	}
	if err := d.trash(p); err != nil {
		return fmt.Errorf("delete %s: %w", vol, err)
	}
	return nil
}

func (d *driver) VolumePath(ctx context.Context, vol string) (string, error) {
	return d.layout.Existing(storage.Ref{Volume: vol})
}

func (d *driver) CreateSnapshot(ctx context.Context, snap storage.Ref) error {
	if err := storage.CheckRef(snap, true); err != nil {
		return err
	}
	return d.copyTo(ctx, storage.Ref{Volume: snap.Volume}, snap)
}

func (d *driver) DeleteSnapshot(ctx context.Context, snap storage.Ref) error {
	return d.layout.DeleteSnapshot(snap, d.trash)
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
	base := ""
	if parent != "" {
		if base, err = d.layout.Existing(storage.Ref{Volume: src.Volume, Snapshot: parent}); err != nil {
			return err
		}
	}
	if err := archive.Write(ctx, w, from, base); err != nil {
		return fmt.Errorf("send %s: %w", src, err)
	}
	return nil
}

func (d *driver) Receive(ctx context.Context, dst storage.Ref, parent string, r io.Reader) error {
	if err := storage.CheckRef(dst, false); err != nil {
		return err
	}
	head := storage.Ref{Volume: dst.Volume}
	if dst.Snapshot != "" {
		if err := d.layout.Absent(dst); err != nil {
			return err
		}
	}
	rv := revert.New()
	defer rv.Fail()
	staged := d.layout.Staging(head)
	rv.Add(func() { _ = os.RemoveAll(staged) })
	if parent == "" {
		if err := d.layout.Absent(head); err != nil {
			return err
		}
		if err := os.Mkdir(staged, 0o755); err != nil {
			return err
		}
	} else {
		if _, err := d.layout.Existing(head); err != nil {
			return err
		}
		base, err := d.layout.Existing(storage.Ref{Volume: dst.Volume, Snapshot: parent})
		if err != nil {
			return err
		}
		if err := copytree.Copy(ctx, base, staged); err != nil {
			return fmt.Errorf("receive %s: %w", dst, err)
		}
	}
	if err := archive.Extract(ctx, r, staged, archive.ExtractOptions{Whiteouts: parent != ""}); err != nil {
		return fmt.Errorf("receive %s: %w", dst, err)
	}
	if dst.Snapshot != "" {
		snapStaged := d.layout.Staging(dst)
		if err := copytree.Copy(ctx, staged, snapStaged); err != nil {
			_ = os.RemoveAll(snapStaged)
			return fmt.Errorf("receive %s: %w", dst, err)
		}
		if err := d.layout.Publish(snapStaged, dst); err != nil {
			_ = os.RemoveAll(snapStaged)
			return err
		}
		rv.Add(func() { _ = d.trash(d.layout.Path(dst)) })
	}
	if parent == "" {
		if err := d.layout.Publish(staged, head); err != nil {
			return err
		}
	} else {
		old, err := d.layout.Swap(staged, dst.Volume)
		if err != nil {
			return err
		}
		_ = os.RemoveAll(old)
	}
	rv.Success()
	return nil
}
