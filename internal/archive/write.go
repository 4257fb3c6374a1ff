package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
)

// Write writes the tree under root as a tar stream. When base is not empty
// it names an earlier state of the same tree and the stream holds only the
// entries that differ from it, plus whiteouts for the paths that are gone;
// Extract with Whiteouts set applies such a stream onto a copy of base.
func Write(ctx context.Context, w io.Writer, root, base string) error {
	tw := tar.NewWriter(w)
	if err := WriteTree(ctx, tw, root, base, "", idmap.Shift{}); err != nil {
		return err
	}
	return tw.Close()
}

// WriteTree writes the tree under root into tw as Write does, with every
// name (and hard link target) under the directory prefix when it is not
// empty, so that one stream can hold several trees, and the owners (and
// the IDs in ACLs) shifted by ids: a volume whose files carry its
// instance's host IDs on disk goes out with the IDs inside. It leaves tw
// open.
func WriteTree(ctx context.Context, tw *tar.Writer, root, base, prefix string, ids idmap.Shift) error {
	wr := &writer{ctx: ctx, tw: tw, root: root, base: base, prefix: prefix, ids: ids, links: map[inode]string{}, buf: make([]byte, 256<<10)}
	top, err := readEntry(unix.AT_FDCWD, root, root)
	if err != nil {
		return err
	}
	var baseTop *entry
	if base != "" {
		if baseTop, err = readEntry(unix.AT_FDCWD, base, base); err != nil {
			return err
		}
	}
	return wr.walk("", top, baseTop)
}

type inode struct{ dev, ino uint64 }

type writer struct {
	ctx    context.Context
	tw     *tar.Writer
	root   string
	base   string
	prefix string
	ids    idmap.Shift
	links  map[inode]string
	buf    []byte
}

// name is the stream's name for rel, a path relative to the root ("" for it).
func (w *writer) name(rel string) string {
	switch {
	case w.prefix == "" && rel == "":
		return "."
	case w.prefix == "":
		return rel
	}
	return path.Join(w.prefix, rel)
}

// entry is what Write knows of one path on one side. Its link target and
// xattrs are read only when needed (load): most paths of a difference are
// told unchanged by their inode alone.
type entry struct {
	path   string
	st     unix.Stat_t
	loaded bool
	link   string
	xattrs map[string]string
}

// readEntry stats name in the directory dirfd; p is its full path.
func readEntry(dirfd int, name, p string) (*entry, error) {
	e := &entry{path: p}
	if err := unix.Fstatat(dirfd, name, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return e, nil
}

func (e *entry) load() error {
	if e.loaded {
		return nil
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		l, err := os.Readlink(e.path)
		if err != nil {
			return err
		}
		e.link = l
	}
	x, err := fsutil.Xattrs(e.path)
	if err != nil {
		return err
	}
	e.xattrs, e.loaded = x, true
	return nil
}

// same is the quick check (as rsync's): equal type, owner, mode, size, mtime,
// device, link target and xattrs mean equal content. The same inode with
// the same change time (a path a snapshot left alone) is the same without
// a look at its link or xattrs.
func same(a, b *entry) (bool, error) {
	if a.st.Mode != b.st.Mode || a.st.Uid != b.st.Uid || a.st.Gid != b.st.Gid ||
		a.st.Mtim != b.st.Mtim || a.st.Rdev != b.st.Rdev {
		return false, nil
	}
	if a.st.Mode&unix.S_IFMT == unix.S_IFREG && a.st.Size != b.st.Size {
		return false, nil
	}
	if a.st.Ino == b.st.Ino && a.st.Ctim == b.st.Ctim {
		return true, nil
	}
	if err := a.load(); err != nil {
		return false, err
	}
	if err := b.load(); err != nil {
		return false, err
	}
	if a.link != b.link || len(a.xattrs) != len(b.xattrs) {
		return false, nil
	}
	for k, v := range a.xattrs {
		if bv, ok := b.xattrs[k]; !ok || bv != v {
			return false, nil
		}
	}
	return true, nil
}

// dir is an open directory on one side, with its sorted names.
type dir struct {
	f     *os.File
	names []string
}

func openDir(p string) (*dir, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return nil, err
	}
	sort.Strings(names)
	return &dir{f: f, names: names}, nil
}

// entry stats name in d.
func (d *dir) entry(name string) (*entry, error) {
	return readEntry(int(d.f.Fd()), name, filepath.Join(d.f.Name(), name))
}

// walk writes rel (a directory, "" for the root, read as cur) and
// everything below it. old is rel in the base, when there is one and it
// was reached through directories only, so that no symlink is followed.
func (w *writer) walk(rel string, cur, old *entry) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if old != nil && old.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// Replaced by a directory: nothing below it is in the base.
		if err := w.write(rel, cur); err != nil {
			return err
		}
		old = nil
	} else if old == nil {
		if err := w.write(rel, cur); err != nil {
			return err
		}
	} else if ok, err := same(cur, old); err != nil {
		return err
	} else if !ok {
		if err := w.write(rel, cur); err != nil {
			return err
		}
	}
	d, err := openDir(cur.path)
	if err != nil {
		return err
	}
	defer d.f.Close()
	var bd *dir
	if old != nil {
		if bd, err = openDir(old.path); err != nil {
			return err
		}
		defer bd.f.Close()
		if err := w.whiteouts(rel, bd.names, d.names); err != nil {
			return err
		}
	}
	for _, n := range d.names {
		child := path.Join(rel, n)
		e, err := d.entry(n)
		if err != nil {
			return err
		}
		var prev *entry
		if bd != nil {
			if prev, err = bd.entry(n); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if e.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := w.walk(child, e, prev); err != nil {
				return err
			}
			continue
		}
		if prev != nil {
			ok, err := same(e, prev)
			if err != nil {
				return err
			}
			if ok {
				w.noteLink(child, e)
				continue
			}
		}
		if err := w.write(child, e); err != nil {
			return err
		}
	}
	return nil
}

// whiteouts marks the names of the base directory that the tree no longer has.
func (w *writer) whiteouts(rel string, oldNames, names []string) error {
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for _, n := range oldNames {
		if have[n] {
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: w.name(path.Join(rel, whiteoutPrefix+n)), Mode: 0o600, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	return nil
}

// noteLink remembers the first path of a multiply-linked inode, so that the
// next path of it is written as a hard link.
func (w *writer) noteLink(rel string, e *entry) bool {
	if e.st.Nlink < 2 || e.st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return false
	}
	k := inode{e.st.Dev, e.st.Ino}
	if _, ok := w.links[k]; ok {
		return true
	}
	w.links[k] = rel
	return false
}

func (w *writer) write(rel string, e *entry) error {
	if err := e.load(); err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:       w.name(rel),
		Mode:       int64(e.st.Mode & 0o7777),
		Uid:        int(w.ids.UID(e.st.Uid)),
		Gid:        int(w.ids.GID(e.st.Gid)),
		ModTime:    time.Unix(e.st.Mtim.Sec, e.st.Mtim.Nsec),
		AccessTime: time.Unix(e.st.Atim.Sec, e.st.Atim.Nsec),
		Format:     tar.FormatPAX,
	}
	if len(e.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(e.xattrs))
		for k, v := range e.xattrs {
			hdr.PAXRecords[xattrPrefix+k] = shiftXattr(w.ids, k, v)
		}
	}
	if w.noteLink(rel, e) {
		hdr.Typeflag = tar.TypeLink
		hdr.Linkname = w.name(w.links[inode{e.st.Dev, e.st.Ino}])
		hdr.PAXRecords = nil
		return w.tw.WriteHeader(hdr)
	}
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if hdr.Name != "." {
			hdr.Name += "/"
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.link
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if e.st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(e.st.Rdev))
		hdr.Devminor = int64(unix.Minor(e.st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = e.st.Size
	default:
		return nil // sockets belong to a running system, not to an image
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	// One buffer for every file: io.Copy would make a new one for each.
	n, err := io.CopyBuffer(struct{ io.Writer }{w.tw}, struct{ io.Reader }{f}, w.buf)
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("write %s: file changed size while being read", rel)
	}
	return nil
}

// shiftXattr is the value v of xattr name with the IDs of an ACL shifted.
func shiftXattr(ids idmap.Shift, name, v string) string {
	if slices.Contains(idmap.ACLXattrs, name) {
		return string(ids.ACL([]byte(v)))
	}
	return v
}
