// Package fslayout is the on-disk layout shared by the drivers whose volumes
// are directories of one mounted filesystem (dir and btrfs):
//
//	ROOT/volumes/VOL          a volume's head
//	ROOT/snapshots/VOL/SNAP   its snapshots
//	ROOT/.staging/            volumes being made; swept on mount
//	ROOT/.trash/              volumes being deleted; swept on mount
//
// Anything appears under volumes/ or snapshots/ only by an atomic rename of
// a complete tree, so an interrupted operation leaves debris only in the
// two swept directories. The tree is on disk before the rename, and the
// rename is on disk before the call returns: the store may then record the
// volume, and a power loss cannot leave a record of a half-written tree.
package fslayout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/storage"
)

// Layout locates volumes and snapshots below Root.
type Layout struct{ Root string }

const (
	volumesDir   = "volumes"
	snapshotsDir = "snapshots"
	stagingDir   = ".staging"
	trashDir     = ".trash"
)

// Init makes the top-level directories, closed to other users.
func (l Layout) Init() error {
	for _, d := range []string{volumesDir, snapshotsDir, stagingDir, trashDir} {
		if err := storage.PrivateDir(filepath.Join(l.Root, d)); err != nil {
			return err
		}
	}
	return nil
}

// Ready checks, with one statfs, that the filesystem holding the pool is
// mounted at Root: the volumes directory is there, on a filesystem of
// type fsType (any type when 0).
func (l Layout) Ready(fsType int64) error {
	var st unix.Statfs_t
	err := unix.Statfs(filepath.Join(l.Root, volumesDir), &st)
	if errors.Is(err, unix.ENOENT) || err == nil && fsType != 0 && st.Type != fsType {
		return errkind.Wrap(errkind.Unavailable, "%s is not mounted: mount it again, then retry", l.Root)
	}
	if err != nil {
		return fmt.Errorf("statfs %s: %w", l.Root, err)
	}
	return nil
}

// Remove removes the top-level directories, refusing while any volume or
// snapshot is left.
func (l Layout) Remove() error {
	for _, d := range []string{volumesDir, snapshotsDir} {
		entries, err := os.ReadDir(filepath.Join(l.Root, d))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if len(entries) > 0 {
			return errkind.Wrap(errkind.Busy, "pool still holds %d %s", len(entries), d)
		}
	}
	for _, d := range []string{volumesDir, snapshotsDir, stagingDir, trashDir} {
		if err := os.RemoveAll(filepath.Join(l.Root, d)); err != nil {
			return err
		}
	}
	return nil
}

// Volume is the path of a volume's head.
func (l Layout) Volume(vol string) string { return filepath.Join(l.Root, volumesDir, vol) }

// SnapshotDir is the directory holding a volume's snapshots.
func (l Layout) SnapshotDir(vol string) string { return filepath.Join(l.Root, snapshotsDir, vol) }

// Path is the path of a volume or of a snapshot.
func (l Layout) Path(ref storage.Ref) string {
	if ref.Snapshot == "" {
		return l.Volume(ref.Volume)
	}
	return filepath.Join(l.SnapshotDir(ref.Volume), ref.Snapshot)
}

// Existing returns the path of ref, or an errkind.NotFound error.
func (l Layout) Existing(ref storage.Ref) (string, error) {
	if err := storage.CheckRef(ref, false); err != nil {
		return "", err
	}
	p := l.Path(ref)
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if ref.Snapshot != "" {
				return "", errkind.Wrap(errkind.NotFound, "snapshot %s not found", ref)
			}
			return "", errkind.Wrap(errkind.NotFound, "volume %s not found", ref)
		}
		return "", err
	}
	return p, nil
}

// Absent checks that ref is a valid name not yet in use.
func (l Layout) Absent(ref storage.Ref) error {
	if err := storage.CheckRef(ref, false); err != nil {
		return err
	}
	if _, err := os.Lstat(l.Path(ref)); err == nil {
		return errkind.Wrap(errkind.AlreadyExists, "%s already exists", ref)
	}
	return nil
}

// Staging returns a fresh path below the staging directory for ref.
func (l Layout) Staging(ref storage.Ref) string {
	name := ref.Volume
	if ref.Snapshot != "" {
		name += "@" + ref.Snapshot
	}
	return filepath.Join(l.Root, stagingDir, name+"."+storage.Unique())
}

// Publish moves a complete tree from staging into place for ref, atomically
// and durably, failing if ref already exists.
func (l Layout) Publish(staged string, ref storage.Ref) error {
	dst := l.Path(ref)
	if ref.Snapshot != "" {
		if err := os.MkdirAll(filepath.Dir(dst), 0o711); err != nil {
			return err
		}
	}
	if err := fsutil.SyncFS(staged); err != nil {
		return err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return errkind.Wrap(errkind.AlreadyExists, "%s already exists", ref)
		}
		return fmt.Errorf("publish %s: %w", ref, err)
	}
	return syncParents(dst)
}

// syncParents makes the name of p durable, and the name of its directory
// in turn when that is a snapshot directory Publish may just have made.
func syncParents(p string) error {
	dir := filepath.Dir(p)
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(dir))
}

// Swap replaces the head of vol with the staged tree, atomically and
// durably, and returns the old head, now in the trash, for the caller to
// remove.
func (l Layout) Swap(staged, vol string) (string, error) {
	if err := fsutil.SyncFS(staged); err != nil {
		return "", err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, l.Volume(vol), unix.RENAME_EXCHANGE); err != nil {
		return "", fmt.Errorf("swap head of %s: %w", vol, err)
	}
	if err := fsutil.SyncDir(filepath.Join(l.Root, volumesDir)); err != nil {
		return "", err
	}
	return l.ToTrash(staged)
}

// ToTrash moves path into the trash, durably, and returns its new path: a
// tree the store forgets cannot come back after a power loss, and what
// is in the trash is swept on mount.
func (l Layout) ToTrash(path string) (string, error) {
	dst := filepath.Join(l.Root, trashDir, filepath.Base(path)+"."+storage.Unique())
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return "", err
	}
	return dst, nil
}

// Sweep returns what an interrupted operation left in staging and trash,
// for the driver to remove (btrfs must delete subvolumes its own way).
func (l Layout) Sweep() ([]string, error) {
	var out []string
	for _, d := range []string{stagingDir, trashDir} {
		entries, err := os.ReadDir(filepath.Join(l.Root, d))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out = append(out, filepath.Join(l.Root, d, e.Name()))
		}
	}
	return out, nil
}

// OpenSnapshot returns the directory of a snapshot, which needs no release.
func (l Layout) OpenSnapshot(snap storage.Ref) (string, func() error, error) {
	if err := storage.CheckRef(snap, true); err != nil {
		return "", nil, err
	}
	p, err := l.Existing(snap)
	if err != nil {
		return "", nil, err
	}
	return p, func() error { return nil }, nil
}

// DeleteSnapshot removes a snapshot's tree with remove, then the volume's
// snapshot directory if that was its last.
func (l Layout) DeleteSnapshot(snap storage.Ref, remove func(path string) error) error {
	if err := storage.CheckRef(snap, true); err != nil {
		return err
	}
	p, err := l.Existing(snap)
	if err != nil {
		return err
	}
	if err := remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", snap, err)
	}
	return fsutil.RemoveIfEmpty(l.SnapshotDir(snap.Volume))
}

// Usage walks the tree of a volume or snapshot. (btrfs accounts per
// subvolume only with quota groups, which slow every snapshot and delete.)
func (l Layout) Usage(ref storage.Ref) (int64, error) {
	p, err := l.Existing(ref)
	if err != nil {
		return 0, err
	}
	return fsutil.DiskUsage(p)
}

// List returns the volumes and snapshots below Root.
func (l Layout) List() ([]storage.Ref, error) {
	var out []storage.Ref
	vols, err := os.ReadDir(filepath.Join(l.Root, volumesDir))
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		out = append(out, storage.Ref{Volume: v.Name()})
	}
	owners, err := os.ReadDir(filepath.Join(l.Root, snapshotsDir))
	if err != nil {
		return nil, err
	}
	for _, o := range owners {
		snaps, err := os.ReadDir(l.SnapshotDir(o.Name()))
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			out = append(out, storage.Ref{Volume: o.Name(), Snapshot: s.Name()})
		}
	}
	return out, nil
}
