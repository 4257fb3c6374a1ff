// Package fsutil holds the small filesystem helpers that silo's layers
// share: mount points, file locks, durable syncs, disk usage and xattrs.
package fsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

// DiskUsage returns the bytes allocated to the files under root, counting
// each hard-linked inode once.
func DiskUsage(root string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// IsMountPoint reports whether path is the mount point of a filesystem.
// statx says so in one call, without asking a FUSE daemon (it may answer
// from cached attributes), where reading the mount table costs in
// proportion to the host's mounts: one per instance on ZFS. Kernels before
// 5.8 do not say, and the table answers.
func IsMountPoint(path string) (bool, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, 0, &st)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return false, nil
	case err != nil:
		return false, &os.PathError{Op: "statx", Path: path, Err: err}
	case st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0:
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	return inMountTable(path)
}

// inMountTable reports whether path is a mount point in /proc/self/mountinfo.
func inMountTable(path string) (bool, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			n := (s[i+1]-'0')*64 + (s[i+2]-'0')*8 + (s[i+3] - '0')
			b.WriteByte(n)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// RemoveIfEmpty removes dir when it holds nothing; a missing dir is fine.
func RemoveIfEmpty(dir string) error {
	err := syscall.Rmdir(dir)
	if err == nil || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return err
}

// LockFile opens (creating) and flocks path with how (LOCK_EX, LOCK_SH,
// optionally |LOCK_NB). The lock lasts until the file is closed, or the
// process dies. A holder may unlink the file before it lets go: a command
// that opened it before then and gets the lock after finds the path no
// longer names its file, and locks the path's new file instead, so that
// two commands never hold the lock of one path at once.
func LockFile(path string, how int) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(f, path, how); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errkind.Wrap(errkind.Busy, "%s is locked", path)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		same, err := names(path, f)
		if same {
			return f, nil
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
}

// flock locks f, the file of path. A lock that must be waited for is
// logged at debug level, with how long the wait took: a command that is
// slow for want of a lock shows why.
func flock(f *os.File, path string, how int) error {
	if how&syscall.LOCK_NB == 0 {
		err := flockNow(f, how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		slog.Debug("waiting for a lock", "path", path)
		start := time.Now()
		defer func() { slog.Debug("lock taken", "path", path, "waited", time.Since(start)) }()
	}
	return flockNow(f, how)
}

func flockNow(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// names reports whether path names the open file f.
func names(path string, f *os.File) (bool, error) {
	var open, named syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &open); err != nil {
		return false, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	err := syscall.Stat(path, &named)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return open.Dev == named.Dev && open.Ino == named.Ino, nil
}

// SyncFS flushes the whole filesystem that holds path to disk: one call
// for a tree of any size, where an fsync of each of its files would cost
// one round trip each.
func SyncFS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the entries of directory dir durable: the names that a
// rename, a create or an unlink changed in it.
func SyncDir(dir string) error {
	return SyncDirAt(unix.AT_FDCWD, dir)
}

// SyncDirAt is SyncDir of the directory name relative to dirfd, which may
// be an O_PATH descriptor (name "." syncs dirfd itself).
func SyncDirAt(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}
