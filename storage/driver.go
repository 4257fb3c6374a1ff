// Package storage defines the Driver interface that every storage backend
// (dir, btrfs, zfs) implements, the configuration of a pool, and the
// operation built on top of any driver that fills an image base.
//
// Volumes and snapshots are named by IDs chosen by the caller; no user string
// ever becomes part of a path or dataset name.
package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// Config describes one pool to its driver.
type Config struct {
	// ID names the pool on disk (loop file, mount directory, zpool name).
	ID string
	// Driver is "dir", "btrfs" or "zfs".
	Driver string
	// Source is where the pool lives: a directory for dir, a btrfs mount for
	// btrfs, a zpool or dataset for zfs. Empty with Size set means a new
	// loop-backed pool under StateDir.
	Source string
	// Size of a new loop-backed pool, in bytes.
	Size int64
	// StateDir is silo's state directory; pools keep mounts and loop files below it.
	StateDir string
}

// Ref names a volume, or one of its snapshots when Snapshot is set.
type Ref struct {
	Volume   string
	Snapshot string
}

func (r Ref) String() string {
	if r.Snapshot == "" {
		return r.Volume
	}
	return r.Volume + "@" + r.Snapshot
}

// Pool is the lifecycle of the storage behind a pool.
type Pool interface {
	// Create makes the pool's storage: formats a loop file, makes the
	// top-level directories or datasets. It leaves nothing behind on failure.
	Create(ctx context.Context) error
	// Mount makes an existing pool ready after a restart (mounts its loop file,
	// imports its zpool) and clears what an interrupted operation left. It is idempotent.
	Mount(ctx context.Context) error
	// Ready checks that the pool's storage is in place (mounted, imported)
	// cheaply enough for every command: no external command runs. It
	// returns nil, or an errkind.Unavailable error that says what is
	// missing and how to bring it back.
	Ready(ctx context.Context) error
	// Destroy removes everything Create made. The pool must hold no volume.
	Destroy(ctx context.Context) error
}

// Volumes is what the layers above do with volumes.
//
// A volume is writable until sealed. A snapshot is a read-only point in time
// of a volume. Clones, snapshots and deletions may be done in any order:
// deleting a volume keeps its snapshots, and deleting a volume or snapshot
// that others were cloned from leaves them working; the space is reclaimed
// when the last dependant goes.
type Volumes interface {
	// CreateVolume makes an empty writable volume and returns its root.
	CreateVolume(ctx context.Context, vol string) (string, error)
	// SealVolume makes a volume read-only for good, ready to serve as an image base.
	SealVolume(ctx context.Context, vol string) error
	// CloneVolume makes dst, a writable copy-on-write clone of src: a volume
	// (an image base or an instance) or one of its snapshots.
	CloneVolume(ctx context.Context, src Ref, dst string) error
	// DeleteVolume deletes a volume's head; its snapshots stay until deleted.
	DeleteVolume(ctx context.Context, vol string) error
	// VolumePath returns the root of a volume, mounting it if need be.
	VolumePath(ctx context.Context, vol string) (string, error)

	// CreateSnapshot takes a read-only snapshot of a volume.
	CreateSnapshot(ctx context.Context, snap Ref) error
	// DeleteSnapshot deletes a snapshot.
	DeleteSnapshot(ctx context.Context, snap Ref) error
	// OpenSnapshot gives a read-only view of a snapshot's root until release is called.
	OpenSnapshot(ctx context.Context, snap Ref) (root string, release func() error, err error)

	// List returns every volume and snapshot that can be named: deleted
	// heads kept for their snapshots, and the driver's own snapshots, are
	// left out. It lets a pool be checked against the records of it.
	List(ctx context.Context) ([]Ref, error)

	// Usage reports the bytes a volume or snapshot occupies.
	Usage(ctx context.Context, ref Ref) (int64, error)

	// Send writes src (a snapshot, or a volume's current state) as a stream,
	// holding only what changed since parent, a snapshot of the same volume,
	// when parent is not empty.
	Send(ctx context.Context, src Ref, parent string, w io.Writer) error
	// Receive reads a stream made by Send of a driver of the same kind. A
	// full stream creates dst.Volume; an incremental one replaces the head of
	// dst.Volume, which must hold the snapshot parent the stream was made
	// against. When dst.Snapshot is set, the received state is also kept as
	// that snapshot.
	Receive(ctx context.Context, dst Ref, parent string, r io.Reader) error
}

// Quota is what a driver that can cap the size of a volume does. The cap
// is on what the volume's head holds, as the driver's filesystem counts
// it; writing past it fails with ENOSPC or EDQUOT.
type Quota interface {
	// SetQuota caps volume vol at bytes; 0 lifts the cap. A filesystem that
	// cannot cap volumes gives an errkind.Invalid error that says why; lifting
	// a cap that was never set always works.
	SetQuota(ctx context.Context, vol string, bytes int64) error
	// Quota returns the cap of vol, 0 when it has none.
	Quota(ctx context.Context, vol string) (int64, error)
}

// Driver is one storage backend serving one pool.
type Driver interface {
	Pool
	Volumes
}

// validID accepts 1 to 128 of [A-Za-z0-9_.-], starting with a letter or
// digit. (Written out rather than a regexp: compiling one at start-up
// costs every silo command a millisecond.)
func validID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i, c := range []byte(id) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// CheckID refuses an ID that could not safely be a file or dataset name.
func CheckID(kind, id string) error {
	if !validID(id) {
		return errkind.Wrap(errkind.Invalid, "invalid %s ID %q", kind, id)
	}
	return nil
}

// CheckRef checks the IDs in ref; a snapshot is required when needSnap is set.
func CheckRef(ref Ref, needSnap bool) error {
	if err := CheckID("volume", ref.Volume); err != nil {
		return err
	}
	if ref.Snapshot == "" && !needSnap {
		return nil
	}
	return CheckID("snapshot", ref.Snapshot)
}

// DiskFile is where a loop-backed pool keeps its disk image.
func (c Config) DiskFile() string {
	return filepath.Join(c.StateDir, "disks", c.ID+".img")
}

// MountDir is where a pool that silo mounts itself is mounted.
func (c Config) MountDir() string {
	return filepath.Join(c.StateDir, "pools", c.ID)
}

// PrivateDir makes directory path, or changes it, to be root's alone. A
// pool's volumes hold their files with the IDs the image gives them, so a
// setuid-root program made inside an instance is one on the host too: no
// other user of the host may reach it through the pool's directories.
func PrivateDir(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	return os.Chmod(path, 0o700)
}

// CreateDiskFile makes a new sparse file of size bytes at path for a
// loop-backed pool; it refuses to reuse an existing file.
func CreateDiskFile(path string, size int64) error {
	if size < 128<<20 {
		return errkind.Wrap(errkind.Invalid, "pool size %d is too small: at least 128MiB", size)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return errkind.Wrap(errkind.AlreadyExists, "disk file %s already exists", path)
		}
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

var uniqueSeq atomic.Uint64

// Unique returns a short string that no other call returns, in this process
// or in another: for the names of temporary volumes, snapshots and trees.
func Unique() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(int64(os.Getpid()), 36) + strconv.FormatUint(uniqueSeq.Add(1), 36)
}
