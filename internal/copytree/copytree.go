// Package copytree copies a filesystem tree as `cp -a` does, but in parallel
// and by reflink where the filesystem can share extents: owners, modes,
// timestamps, xattrs, hard links, symlinks, device nodes, fifos and holes
// are all kept.
package copytree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/fsutil"
)

// Copy copies the tree at src to dst, which must not exist yet. On failure
// dst may be partly written; the caller removes it.
func Copy(ctx context.Context, src, dst string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &copier{ctx: ctx, cancel: cancel, links: map[inode]string{}}
	c.reflink.Store(true)
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for range max(4, 2*runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := c.copyFile(j.src, j.dst, &j.st); err != nil {
					cancel(err)
				}
			}
		}()
	}
	err := c.walk(src, dst, jobs)
	close(jobs)
	wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return err
	}
	for _, l := range c.pendingLinks {
		if err := os.Link(l.target, l.path); err != nil {
			return fmt.Errorf("hard link %s: %w", l.path, err)
		}
	}
	// Directories last and deepest first: writing into a directory changes its times.
	for i := len(c.dirs) - 1; i >= 0; i-- {
		d := c.dirs[i]
		if err := setMeta(d.src, d.dst, &d.st); err != nil {
			return err
		}
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type job struct {
	src, dst string
	st       unix.Stat_t
}

type link struct{ target, path string }

type copier struct {
	ctx          context.Context
	cancel       context.CancelCauseFunc
	reflink      atomic.Bool
	links        map[inode]string
	pendingLinks []link
	dirs         []job
}

func (c *copier) walk(src, dst string, jobs chan<- job) error {
	if err := c.ctx.Err(); err != nil {
		return context.Cause(c.ctx)
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		c.dirs = append(c.dirs, job{src: src, dst: dst, st: st})
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		for _, n := range names {
			if err := c.walk(filepath.Join(src, n), filepath.Join(dst, n), jobs); err != nil {
				return err
			}
		}
		return nil
	case unix.S_IFREG:
		if st.Nlink > 1 {
			k := inode{st.Dev, st.Ino}
			if first, ok := c.links[k]; ok {
				c.pendingLinks = append(c.pendingLinks, link{target: first, path: dst})
				return nil
			}
			c.links[k] = dst
		}
		select {
		case jobs <- job{src: src, dst: dst, st: st}:
			return nil
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	default: // devices, fifos, sockets
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	return setMeta(src, dst, &st)
}

func (c *copier) copyFile(src, dst string, st *unix.Stat_t) error {
	in, err := unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer unix.Close(in)
	out, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer unix.Close(out)
	if err := c.copyData(in, out, st.Size); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return setMeta(src, dst, st)
}

// copyData shares the extents of in with out when the filesystem can,
// else copies the data regions only, so holes stay holes.
func (c *copier) copyData(in, out int, size int64) error {
	if size == 0 {
		return nil
	}
	if c.reflink.Load() {
		err := unix.IoctlFileClone(out, in)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
			return err
		}
		c.reflink.Store(false)
	}
	var off int64
	for off < size {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // the rest is a hole
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(in, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if err := copyRange(in, out, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return unix.Ftruncate(out, size)
}

// copyRange copies n bytes at off in the kernel, or through a buffer when
// the two files are on filesystems copy_file_range cannot join.
func copyRange(in, out int, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		m, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(n, 1<<30)), 0)
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			return copyBuffered(in, out, roff, n)
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("file shrank while being copied")
		}
		n -= int64(m)
	}
	return nil
}

func copyBuffered(in, out int, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		m, err := unix.Pread(in, buf[:min(n, int64(len(buf)))], off)
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("file shrank while being copied")
		}
		if _, err := unix.Pwrite(out, buf[:m], off); err != nil {
			return err
		}
		off += int64(m)
		n -= int64(m)
	}
	return nil
}

// setMeta gives dst the owner, mode, xattrs and times of src, without
// following symlinks.
func setMeta(src, dst string, st *unix.Stat_t) error {
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	xattrs, err := fsutil.Xattrs(src)
	if err != nil {
		return err
	}
	for k, v := range xattrs {
		if err := fsutil.SetXattr(dst, k, v); err != nil {
			return err
		}
	}
	if !isLink {
		// chmod after chown: chown clears the set-id bits.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}
