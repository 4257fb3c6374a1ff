// Package idshift rewrites the owners of a tree from one ID map to
// another by a walk over it: the fallback for filesystems that cannot be
// idmapped (zfs-fuse), where an unprivileged instance's volume carries
// its host IDs on disk. It is done once per image base and map, so that
// the instances cloned from the shifted base need no walk of their own.
package idshift

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
)

// Tree shifts the owner of every entry under root (root included) by s:
// symlinks themselves, hard-linked files once, the set-id bits that a
// chown clears given back, and the IDs in POSIX ACLs shifted too. IDs
// outside s.From become nobody, as the kernel shows them. Directories are
// walked in parallel: on a FUSE filesystem each entry is a round trip to
// its daemon.
func Tree(ctx context.Context, root string, s idmap.Shift) error {
	if s.None() {
		return nil
	}
	w := &walker{ctx: ctx, s: s, seen: map[[2]uint64]bool{}, acls: true, sem: make(chan struct{}, 2*runtime.NumCPU())}
	if err := w.entry(unix.AT_FDCWD, root, root); err != nil {
		return err
	}
	w.wg.Add(1)
	w.dir(root)
	w.wg.Wait()
	return w.err
}

type walker struct {
	ctx  context.Context
	s    idmap.Shift
	sem  chan struct{} // bounds the directories walked at once
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen map[[2]uint64]bool // inodes with more than one link, done once
	acls bool               // false once the filesystem says it has no xattrs
	err  error
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *walker) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// dir shifts the entries of directory p, and walks its subdirectories:
// in goroutines of their own while the bound allows, else in this one.
func (w *walker) dir(p string) {
	defer w.wg.Done()
	if w.failed() {
		return
	}
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		w.fail(fmt.Errorf("shift %s: %w", p, err))
		return
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		w.fail(fmt.Errorf("shift %s: %w", p, err))
		return
	}
	for _, name := range names {
		sub := filepath.Join(p, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			w.fail(fmt.Errorf("shift %s: %w", sub, err))
			return
		}
		if err := w.shift(fd, name, sub, &st); err != nil {
			w.fail(err)
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		w.wg.Add(1)
		select {
		case w.sem <- struct{}{}:
			go func() { defer func() { <-w.sem }(); w.dir(sub) }()
		default:
			w.dir(sub)
		}
	}
}

// entry shifts name in directory dirfd, stat'ing it first.
func (w *walker) entry(dirfd int, name, p string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("shift %s: %w", p, err)
	}
	return w.shift(dirfd, name, p, &st)
}

// shift gives name in dirfd, of stat st and path p, its shifted owner.
func (w *walker) shift(dirfd int, name, p string, st *unix.Stat_t) error {
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{st.Dev, st.Ino}
		w.mu.Lock()
		done := w.seen[k]
		w.seen[k] = true
		w.mu.Unlock()
		if done {
			return nil
		}
	}
	uid, gid := w.s.UID(st.Uid), w.s.GID(st.Gid)
	if uid != st.Uid || gid != st.Gid {
		var fcap []byte
		if typ == unix.S_IFREG {
			fcap = w.fileCaps(p)
		}
		if err := unix.Fchownat(dirfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("shift %s: %w", p, err)
		}
		if fcap != nil {
			// chown drops them too: give them back, for the shifted root.
			if err := unix.Lsetxattr(p, capXattr, w.shiftCaps(fcap), 0); err != nil {
				return fmt.Errorf("shift %s: file capabilities: %w", p, err)
			}
		}
		// chown clears the set-id bits: give them back.
		if typ != unix.S_IFLNK && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			if err := unix.Fchmodat(dirfd, name, st.Mode&0o7777, 0); err != nil {
				return fmt.Errorf("shift %s: %w", p, err)
			}
		}
	}
	if typ == unix.S_IFLNK {
		return nil
	}
	return w.shiftACLs(p)
}

// capXattr holds a file's capabilities: a revision, the capability sets
// and, from revision 3, the host ID of the root they are for.
const capXattr = "security.capability"

const (
	capRevision3 = 0x03000000
	capV2Size    = 20
	capV3Size    = 24
)

// fileCaps returns the capabilities of the file p, or nil.
func (w *walker) fileCaps(p string) []byte {
	w.mu.Lock()
	xattrs := w.acls
	w.mu.Unlock()
	if !xattrs {
		return nil
	}
	buf := make([]byte, capV3Size)
	n, err := unix.Lgetxattr(p, capXattr, buf)
	if err != nil || n < capV2Size {
		return nil
	}
	return buf[:n]
}

// shiftCaps makes file capabilities v (revision 2 or 3) hold for the
// shifted root: the kernel honours a revision 2 set only for the host's
// root, and a revision 3 one only for the root its ID names.
func (w *walker) shiftCaps(v []byte) []byte {
	out := make([]byte, capV3Size)
	copy(out, v[:capV2Size])
	rootid := uint32(0)
	if binary.LittleEndian.Uint32(v)&^0xff == capRevision3 && len(v) >= capV3Size {
		rootid = binary.LittleEndian.Uint32(v[capV2Size:])
	}
	// Keep the effective flag (the low bits), change the revision.
	binary.LittleEndian.PutUint32(out, capRevision3|binary.LittleEndian.Uint32(v)&0xff)
	binary.LittleEndian.PutUint32(out[capV2Size:], w.s.UID(rootid))
	return out
}

// shiftACLs shifts the IDs in the POSIX ACLs of p, if it has any.
func (w *walker) shiftACLs(p string) error {
	w.mu.Lock()
	acls := w.acls
	w.mu.Unlock()
	if !acls {
		return nil
	}
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(p, buf)
	switch {
	case errors.Is(err, unix.ENOTSUP):
		w.mu.Lock()
		w.acls = false
		w.mu.Unlock()
		return nil
	case errors.Is(err, unix.ERANGE):
		n, err = 0, nil // many xattrs: read them below
		buf = nil
	case err != nil:
		return fmt.Errorf("shift %s: list xattrs: %w", p, err)
	}
	if buf != nil && !hasACL(string(buf[:n])) {
		return nil
	}
	x, err := fsutil.Xattrs(p)
	if err != nil {
		return fmt.Errorf("shift %s: %w", p, err)
	}
	for _, name := range idmap.ACLXattrs {
		if v, ok := x[name]; ok {
			if err := fsutil.SetXattr(p, name, string(w.s.ACL([]byte(v)))); err != nil {
				return fmt.Errorf("shift %s: %w", p, err)
			}
		}
	}
	return nil
}

// hasACL says whether a listxattr answer names an ACL.
func hasACL(list string) bool {
	for _, name := range strings.Split(list, "\x00") {
		for _, acl := range idmap.ACLXattrs {
			if name == acl {
				return true
			}
		}
	}
	return false
}
