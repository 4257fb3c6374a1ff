package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
)

// root returns the root directory of instance name's volume.
func (e *Engine) root(ctx context.Context, name string) (string, error) {
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return "", err
	}
	return d.VolumePath(ctx, inst.Volume)
}

// openIn opens p below root, following symlinks only while they stay inside:
// ".." above the root, an absolute symlink or one that climbs out is refused.
func openIn(root, p string, flags int) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(rfd, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return -1, errkind.Wrap(errkind.Invalid, "path %q leaves the instance's root through a symlink (absolute or climbing)", p)
	case errors.Is(err, unix.ENOENT):
		return -1, errkind.Wrap(errkind.NotFound, "path %q not found in the instance", p)
	case errors.Is(err, unix.ENOTDIR):
		return -1, errkind.Wrap(errkind.Invalid, "path %q: a parent is not a directory", p)
	case err != nil:
		return -1, fmt.Errorf("open %q in the instance: %w", p, err)
	}
	return fd, nil
}

// splitPath checks that p, as given for an instance, names a file: it must
// be absolute, must not climb with "..", and must have a last component.
func splitPath(p string) (dir, base string, err error) {
	if !strings.HasPrefix(p, "/") {
		return "", "", errkind.Wrap(errkind.Invalid, "path %q in the instance must be absolute", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", "", errkind.Wrap(errkind.Invalid, "path %q leaves the instance's root", p)
		}
	}
	dir, base = path.Split(path.Clean(p))
	if base == "" || base == "." || base == "/" {
		return "", "", errkind.Wrap(errkind.Invalid, "path %q names no file", p)
	}
	return dir, base, nil
}

// FileMode is the mode of an octal number as people write it (0644,
// 4755): the permissions with the setuid, setgid and sticky bits.
func FileMode(n uint64) os.FileMode {
	m := os.FileMode(n & 0o777)
	for bit, flag := range map[uint64]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky} {
		if n&bit != 0 {
			m |= flag
		}
	}
	return m
}

// PushFile writes r as the file p of instance name, with mode and owner
// (IDs inside the instance), replacing the file atomically if it exists.
func (e *Engine) PushFile(ctx context.Context, name, p string, r io.Reader, mode os.FileMode, uid, gid int) error {
	if _, _, err := splitPath(p); err != nil {
		return err
	}
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return err
	}
	root, err := d.VolumePath(ctx, inst.Volume)
	if err != nil {
		return err
	}
	// On a volume shifted on disk, the owner is the one the map gives.
	s := onDisk(inst.Shift)
	return writeIn(root, p, r, mode, int(s.UID(uint32(uid))), int(s.GID(uint32(gid))))
}

// writeIn writes r as the file p below root, confined to root, replacing
// the file atomically if it exists.
func writeIn(root, p string, r io.Reader, mode os.FileMode, uid, gid int) error {
	dir, base, err := splitPath(p)
	if err != nil {
		return err
	}
	pfd, err := openIn(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return writeAt(pfd, base, p, r, mode, uid, gid, true)
}

// writeAt writes r as the file base in directory dirfd, atomically and
// durably: into a temporary file, synced, renamed over base, and the
// directory synced, so that neither a crash nor a power loss leaves a
// half-written file, and a clone's new identity is on disk before the
// store records the clone. p names it in errors.
func writeAt(dirfd int, base, p string, r io.Reader, mode os.FileMode, uid, gid int, durable bool) error {
	tmp := ".silo-push-" + newID("")
	fd, err := unix.Openat(dirfd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	err = func() error {
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
		// After chown, which clears set-id bits.
		if err := f.Chmod(mode); err != nil {
			return err
		}
		if durable {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := unix.Renameat(dirfd, tmp, dirfd, base); err != nil {
			return err
		}
		if !durable {
			return nil
		}
		return fsutil.SyncDirAt(dirfd, ".")
	}()
	if err != nil {
		_ = unix.Unlinkat(dirfd, tmp, 0)
		if errors.Is(err, unix.EISDIR) {
			return errkind.Wrap(errkind.Invalid, "write %s: a directory is in the way", p)
		}
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// PullFile opens the file p of instance name for reading. A symlink is
// followed while it stays inside the root (Debian's /etc/os-release is
// one), and what it names must be a regular file: opening a FIFO for
// reading would wait for a writer, and a device node may act on open.
func (e *Engine) PullFile(ctx context.Context, name, p string) (*os.File, error) {
	if _, _, err := splitPath(p); err != nil {
		return nil, err
	}
	root, err := e.root(ctx, name)
	if err != nil {
		return nil, err
	}
	// O_PATH pins the inode without opening it, so that the type checked
	// is the type of the file read.
	pfd, err := openIn(root, p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, fmt.Errorf("pull %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errkind.Wrap(errkind.Invalid, "pull %s: %s, not a regular file", p, fileType(st.Mode))
	}
	// Reopening the pinned inode through /proc follows no path again.
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// fileType names the type of a file of mode, for errors.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return fmt.Sprintf("of type %#o", mode&unix.S_IFMT)
}
