// Package archive reads and writes tar streams of whole filesystem trees,
// keeping owners, modes, timestamps, xattrs, hard links, symlinks, device
// nodes and holes. Extraction is hostile-input safe: no entry can write
// outside the root it is extracted into.
//
// Difference streams mark deleted paths with OCI whiteouts: an empty file
// named ".wh.NAME" beside where NAME was.
package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/idmap"
)

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
	xattrPrefix    = "SCHILY.xattr."
	// maxEntrySize bounds a single file: a header claiming more is hostile.
	maxEntrySize = 1 << 40
	blockSize    = 512
)

// ExtractOptions tunes Extract.
type ExtractOptions struct {
	// Whiteouts applies ".wh.NAME" entries as deletions (difference streams).
	Whiteouts bool
	// Shift moves the owners, and the IDs in ACLs, as they are written:
	// into the map of an instance whose volume carries its host IDs.
	Shift idmap.Shift
}

// Extract unpacks the tar stream r into the existing directory root.
// It refuses absolute names, names with "..", entries that would be written
// through a symlink, links that leave root, absurd sizes and truncated
// streams, with an error matching errkind.Invalid. Later entries replace
// earlier ones of the same name, as tar does.
func Extract(ctx context.Context, r io.Reader, root string, opts ExtractOptions) error {
	x, err := NewExtractor(root, opts)
	if err != nil {
		return err
	}
	defer x.Close()
	if err := ReadEntries(ctx, r, x.Entry); err != nil {
		return err
	}
	return x.Finish()
}

// Extractor unpacks entries one at a time into a root, under the rules of
// Extract: for a stream that holds several trees, or more than a tree.
type Extractor struct{ x *extractor }

// NewExtractor opens root for extraction. Call Finish after the last entry,
// and Close in any case.
func NewExtractor(root string, opts ExtractOptions) (*Extractor, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &Extractor{&extractor{root: root, rootFd: rootFd, opts: opts, buf: make([]byte, 128*1024)}}, nil
}

// Entry writes one entry, whose name is relative to the root.
func (x *Extractor) Entry(hdr *tar.Header, body io.Reader) error { return x.x.entry(hdr, body) }

// Finish gives the directories their final metadata and times.
func (x *Extractor) Finish() error { return x.x.finishDirs() }

// Close releases the root.
func (x *Extractor) Close() error { return unix.Close(x.x.rootFd) }

// Strip returns hdr with the leading directory prefix taken off its name
// (and off a hard link's target), and whether the entry lies under prefix
// at all. A hard link from under prefix to a name outside it is refused.
func Strip(hdr *tar.Header, prefix string) (*tar.Header, bool, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return nil, false, err
	}
	rel, ok := under(name, prefix)
	if !ok {
		return nil, false, nil
	}
	out := *hdr
	out.Name = rel
	if rel == "" {
		out.Name = "."
	}
	if hdr.Typeflag == tar.TypeLink {
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return nil, false, err
		}
		if out.Linkname, ok = under(target, prefix); !ok || out.Linkname == "" {
			return nil, false, invalid("hard link %q -> %q leaves %s/", hdr.Name, hdr.Linkname, prefix)
		}
	}
	return &out, true, nil
}

func under(name, prefix string) (string, bool) {
	if name == prefix {
		return "", true
	}
	rel, ok := strings.CutPrefix(name, prefix+"/")
	return rel, ok
}

// ReadEntries calls fn for each entry of the tar stream r, and refuses a
// corrupt stream or one cut short, even at an entry boundary.
func ReadEntries(ctx context.Context, r io.Reader, fn func(hdr *tar.Header, body io.Reader) error) error {
	tail := &tailReader{r: r}
	tr := tar.NewReader(tail)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return invalid("read archive: %w", err)
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
	if !tail.endsWithZeroBlock() {
		return invalid("archive is truncated: no end-of-archive marker")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return errkind.Wrap(errkind.Invalid, format, args...)
}

type dirMeta struct {
	name string
	hdr  *tar.Header
}

type extractor struct {
	root   string
	rootFd int
	opts   ExtractOptions
	dirs   []dirMeta
	buf    []byte
	// kept holds the times of existing directories whose entries this
	// stream changes without carrying the directory itself (difference
	// streams), so that they can be put back.
	kept map[string][2]unix.Timespec
}

// cleanName turns an entry name into a clean relative path ("" for the root)
// and refuses names that are absolute or climb with "..".
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", invalid("entry %q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", invalid("entry %q: path leaves the root", name)
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", invalid("entry %q: NUL in name", name)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// checkHeader applies the rules that need no look at the tree: a clean
// name, a sane size, links that stay inside. It returns the clean name.
func checkHeader(hdr *tar.Header) (string, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return "", err
	}
	if hdr.Size < 0 || hdr.Size > maxEntrySize {
		return "", invalid("entry %q: absurd size %d", hdr.Name, hdr.Size)
	}
	switch {
	case name == "" && hdr.Typeflag != tar.TypeDir:
		return "", invalid("entry %q: the root must be a directory", hdr.Name)
	case hdr.Typeflag == tar.TypeSymlink:
		return name, checkSymlink(name, hdr.Linkname)
	case hdr.Typeflag == tar.TypeLink:
		if target, err := cleanName(hdr.Linkname); err != nil || target == "" {
			return "", invalid("hard link to %q leaves the root", hdr.Linkname)
		}
	}
	return name, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := checkHeader(hdr)
	if err != nil {
		return err
	}
	if name == "" {
		x.dirs = append(x.dirs, dirMeta{name: "", hdr: hdr})
		return nil
	}
	if !extracted(hdr.Typeflag) {
		slog.Debug("archive: skipping entry of unsupported type", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	parent, base := path.Split(name)
	if x.opts.Whiteouts && strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(parent, base)
	}
	pfd, err := x.openParent(parent, true)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(pfd)
	if err := x.keepTimes(pfd, parent); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if err := x.create(pfd, name, base, hdr, r); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // a hard link shares its target's metadata
	}
	if err := x.setMeta(pfd, name, base, hdr); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	return nil
}

// openParent opens the directory dir (relative to root) without following
// any symlink, creating missing directories when create is set.
func (x *extractor) openParent(dir string, create bool) (int, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return unix.Dup(x.rootFd)
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(x.rootFd, dir, how)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) || !create {
		return -1, parentError(dir, err)
	}
	// Create the missing directories one component at a time.
	fd, err = unix.Dup(x.rootFd)
	if err != nil {
		return -1, err
	}
	for _, comp := range strings.Split(dir, "/") {
		next, err := unix.Openat2(fd, comp, how)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(fd, comp, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat2(fd, comp, how)
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, parentError(dir, err)
		}
		fd = next
	}
	return fd, nil
}

func parentError(dir string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return invalid("parent %q passes through a symlink", dir)
	case errors.Is(err, unix.ENOTDIR):
		return invalid("parent %q is not a directory", dir)
	}
	return fmt.Errorf("open parent %q: %w", dir, err)
}

// clear removes what exists at base unless it is a directory and keepDir is set.
func clear(pfd int, base string, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return nil
		}
		return removeAllAt(pfd, base)
	}
	return unix.Unlinkat(pfd, base, 0)
}

// removeAllAt removes base below the directory pfd, recursively, without
// following symlinks.
func removeAllAt(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.ENOTDIR) {
		return unix.Unlinkat(pfd, base, 0)
	}
	if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), base)
	names, err := dir.Readdirnames(-1)
	if err != nil {
		dir.Close()
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			dir.Close()
			return err
		}
	}
	dir.Close()
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}

func (x *extractor) create(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := clear(pfd, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		x.dirs = append(x.dirs, dirMeta{name: name, hdr: hdr})
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := clear(pfd, base, false); err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		err = writeSparse(f, r, hdr.Size, x.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		if err := clear(pfd, base, false); err != nil {
			return err
		}
		return unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		target, _ := cleanName(hdr.Linkname) // checked by checkHeader
		tparent, tbase := path.Split(target)
		tfd, err := x.openParent(tparent, false)
		if errors.Is(err, unix.ENOENT) {
			return invalid("hard link target %q does not exist", hdr.Linkname)
		}
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tfd)
		var st unix.Stat_t
		if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return invalid("hard link target %q does not exist", hdr.Linkname)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return invalid("hard link target %q is a directory", hdr.Linkname)
		}
		if target == name {
			return nil
		}
		if err := clear(pfd, base, false); err != nil {
			return err
		}
		return unix.Linkat(tfd, tbase, pfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := clear(pfd, base, false); err != nil {
			return err
		}
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		return unix.Mknodat(pfd, base, mode|0o600, int(dev))
	}
	return nil
}

// extracted reports whether entries of type t are extracted. Others (a
// global PAX header, which git archive writes, a GNU volume header...)
// are passed over, and give nothing metadata either.
func extracted(t byte) bool {
	switch t {
	case tar.TypeDir, tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return true
	}
	return false
}

// checkSymlink refuses a relative symlink whose target climbs above the
// root. Absolute targets are resolved inside the container, so they stay in.
func checkSymlink(name, target string) error {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return invalid("symlink %q has an invalid target", name)
	}
	if strings.HasPrefix(target, "/") {
		return nil
	}
	joined := path.Join(path.Dir(name), target)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return invalid("symlink %q -> %q leaves the root", name, target)
	}
	return nil
}

func (x *extractor) whiteout(parent, base string) error {
	pfd, err := x.openParent(parent, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("whiteout %q: %w", parent+base, err)
	}
	defer unix.Close(pfd)
	if err := x.keepTimes(pfd, parent); err != nil {
		return err
	}
	if base == opaqueWhiteout {
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		dir := os.NewFile(uintptr(fd), parent)
		defer dir.Close()
		names, err := dir.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return invalid("whiteout %q names nothing", parent+base)
	}
	return removeAllAt(pfd, target)
}

func (x *extractor) setMeta(pfd int, name, base string, hdr *tar.Header) error {
	uid, gid := int(x.opts.Shift.UID(uint32(hdr.Uid))), int(x.opts.Shift.GID(uint32(hdr.Gid)))
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	full := filepath.Join(x.root, name)
	for k, v := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if err := fsutil.SetXattr(full, attr, shiftXattr(x.opts.Shift, attr, v)); err != nil {
				return err
			}
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return setTimes(pfd, base, hdr)
	}
	// chmod after chown: chown clears the set-id bits.
	if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // times are set once the directory is complete
	}
	return setTimes(pfd, base, hdr)
}

func setTimes(pfd int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// keepTimes records the times of the existing directory pfd (named dir)
// before its first change, unless the stream set them already.
func (x *extractor) keepTimes(pfd int, dir string) error {
	dir = strings.TrimSuffix(dir, "/")
	if _, ok := x.kept[dir]; ok {
		return nil
	}
	if x.kept == nil {
		x.kept = map[string][2]unix.Timespec{}
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return err
	}
	x.kept[dir] = [2]unix.Timespec{st.Atim, st.Mtim}
	return nil
}

// finishDirs gives directories their metadata and times, deepest first, now
// that nothing more is written into them.
func (x *extractor) finishDirs() error {
	for _, d := range x.dirs {
		delete(x.kept, d.name) // the stream says what these become
	}
	for dir, ts := range x.kept {
		pfd, err := x.openParent(dir, false)
		if err != nil {
			return fmt.Errorf("directory %q: %w", dir, err)
		}
		err = unix.UtimesNanoAt(pfd, ".", ts[:], 0)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("directory %q: set times: %w", dir, err)
		}
	}
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		parent, base := path.Split(d.name)
		if d.name == "" {
			parent, base = "", "."
		}
		pfd, err := x.openParent(parent, false)
		if err != nil {
			return fmt.Errorf("directory %q: %w", d.name, err)
		}
		if d.name == "" {
			err = x.setMeta(pfd, ".", ".", d.hdr)
		}
		if err == nil {
			err = setTimes(pfd, base, d.hdr)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("directory %q: %w", d.name, err)
		}
	}
	return nil
}

// writeSparse copies size bytes from r into f, leaving runs of zeros as holes.
func writeSparse(f *os.File, r io.Reader, size int64, buf []byte) error {
	var off int64
	for off < size {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return invalid("file data is truncated: %w", err)
		}
		if !isZero(buf[:n]) {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += n
	}
	return f.Truncate(size)
}

var zeroBlock = make([]byte, 128*1024)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// tailReader remembers the last block read so that a stream cut at an
// entry boundary, which tar.Reader takes for a clean end, is caught.
type tailReader struct {
	r    io.Reader
	tail [blockSize]byte
	n    int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if n >= blockSize {
			copy(t.tail[:], p[n-blockSize:n])
		} else {
			copy(t.tail[:], t.tail[n:])
			copy(t.tail[blockSize-n:], p[:n])
		}
		t.n += int64(n)
	}
	return n, err
}

func (t *tailReader) endsWithZeroBlock() bool {
	return t.n >= blockSize && isZero(t.tail[:])
}
