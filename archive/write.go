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
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/fsutil"
)

// Write writes the tree under root as a tar stream. When base is not empty
// it names an earlier state of the same tree and the stream holds only the
// entries that differ from it, plus whiteouts for the paths that are gone;
// Extract with Whiteouts set applies such a stream onto a copy of base.
func Write(ctx context.Context, w io.Writer, root, base string) error {
	tw := tar.NewWriter(w)
	if err := WriteTree(ctx, tw, root, base, ""); err != nil {
		return err
	}
	return tw.Close()
}

// WriteTree writes the tree under root into tw as Write does, with every
// name (and hard link target) under the directory prefix when it is not
// empty, so that one stream can hold several trees. It leaves tw open.
func WriteTree(ctx context.Context, tw *tar.Writer, root, base, prefix string) error {
	wr := &writer{ctx: ctx, tw: tw, root: root, base: base, prefix: prefix, links: map[inode]string{}}
	top, err := readEntry(root)
	if err != nil {
		return err
	}
	return wr.walk("", top, base != "")
}

type inode struct{ dev, ino uint64 }

type writer struct {
	ctx    context.Context
	tw     *tar.Writer
	root   string
	base   string
	prefix string
	links  map[inode]string
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

// entry is what Write knows of one path on one side.
type entry struct {
	st     unix.Stat_t
	link   string
	xattrs map[string]string
}

func readEntry(p string) (*entry, error) {
	e := &entry{}
	if err := unix.Lstat(p, &e.st); err != nil {
		return nil, err
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		l, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		e.link = l
	}
	x, err := fsutil.Xattrs(p)
	if err != nil {
		return nil, err
	}
	e.xattrs = x
	return e, nil
}

// same is the quick check (as rsync's): equal type, owner, mode, size, mtime,
// device, link target and xattrs mean equal content.
func same(a, b *entry) bool {
	if a.st.Mode != b.st.Mode || a.st.Uid != b.st.Uid || a.st.Gid != b.st.Gid ||
		a.st.Mtim != b.st.Mtim || a.link != b.link || a.st.Rdev != b.st.Rdev {
		return false
	}
	if a.st.Mode&unix.S_IFMT == unix.S_IFREG && a.st.Size != b.st.Size {
		return false
	}
	if len(a.xattrs) != len(b.xattrs) {
		return false
	}
	for k, v := range a.xattrs {
		if bv, ok := b.xattrs[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// walk writes rel (a directory, "" for the root, read as cur) and
// everything below it. inBase says that rel's parent is a directory in the
// base too, so that looking rel up there cannot go through a symlink.
func (w *writer) walk(rel string, cur *entry, inBase bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(w.root, rel)
	var old *entry
	var err error
	baseIsDir := false
	if inBase {
		old, err = readEntry(filepath.Join(w.base, rel))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		baseIsDir = old != nil && old.st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	if old == nil || !same(cur, old) {
		if err := w.write(rel, cur); err != nil {
			return err
		}
	}
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	if baseIsDir {
		oldNames, err := readNames(filepath.Join(w.base, rel))
		if err != nil {
			return err
		}
		if err := w.whiteouts(rel, oldNames, names); err != nil {
			return err
		}
	}
	for _, n := range names {
		child := path.Join(rel, n)
		e, err := readEntry(filepath.Join(w.root, child))
		if err != nil {
			return err
		}
		if e.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := w.walk(child, e, baseIsDir); err != nil {
				return err
			}
			continue
		}
		if baseIsDir {
			old, err := readEntry(filepath.Join(w.base, child))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if old != nil && same(e, old) {
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
	hdr := &tar.Header{
		Name:       w.name(rel),
		Mode:       int64(e.st.Mode & 0o7777),
		Uid:        int(e.st.Uid),
		Gid:        int(e.st.Gid),
		ModTime:    time.Unix(e.st.Mtim.Sec, e.st.Mtim.Nsec),
		AccessTime: time.Unix(e.st.Atim.Sec, e.st.Atim.Nsec),
		Format:     tar.FormatPAX,
	}
	if len(e.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(e.xattrs))
		for k, v := range e.xattrs {
			hdr.PAXRecords[xattrPrefix+k] = v
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
	f, err := os.Open(filepath.Join(w.root, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w.tw, f)
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("write %s: file changed size while being read", rel)
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}
