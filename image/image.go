// Package image reads and writes image files: plain root filesystem
// tarballs, and LXD's unified and split images with their metadata.yaml
// and templates. It fingerprints them as LXD does, checks them as they are
// accepted, unpacks them, and writes LXD-compatible unified images.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/runcmd"
)

// Layouts of image files.
const (
	// LayoutRootfs is a tarball of a root filesystem, nothing more.
	LayoutRootfs = "rootfs"
	// LayoutUnified is LXD's one tarball: metadata.yaml, rootfs/, templates/.
	LayoutUnified = "unified"
	// LayoutSplit is LXD's pair: a tarball of metadata.yaml and templates/,
	// and the root filesystem as a tarball or a squashfs.
	LayoutSplit = "split"
)

// Formats of a split image's root filesystem.
const (
	FormatTar      = "tar"
	FormatSquashfs = "squashfs"
)

const (
	metadataName = "metadata.yaml"
	rootfsDir    = "rootfs"
	templatesDir = "templates"
	// maxTemplates bounds all templates together, which are kept whole.
	maxTemplates = 16 << 20
)

// File is an image as accepted into the image store.
type File struct {
	// Fingerprint follows LXD: the SHA-256 of the file, or of a split
	// image's metadata file followed by its rootfs file.
	Fingerprint string
	Size        int64 // of all its files
	Compression string
	Layout      string
	// RootfsFormat is tar or squashfs, for a split image.
	RootfsFormat string
	Metadata     *Metadata
	// Templates holds the files of templates/, by name.
	Templates map[string]string
}

// Save copies the image file r into the new file path while it
// fingerprints it and checks, in the same pass, that it is a sound
// root filesystem tarball or unified image. On any failure path is
// removed, and the error says what is wrong with the image
// (errkind.Invalid) or with the copy.
func Save(ctx context.Context, r io.Reader, path string) (*File, error) {
	h := sha256.New()
	f, err := saveTar(ctx, r, path, h)
	if err != nil {
		return nil, err
	}
	if f.Layout == LayoutSplit {
		os.Remove(path)
		return nil, errkind.Wrap(errkind.Invalid, "this is the metadata half of a split image: give its rootfs file too")
	}
	f.Fingerprint = hex.EncodeToString(h.Sum(nil))
	return f, nil
}

// SaveSplit saves the two files of a split image, meta to metaPath and
// rootfs to rootfsPath, as Save does.
func SaveSplit(ctx context.Context, meta, rootfs io.Reader, metaPath, rootfsPath string) (*File, error) {
	h := sha256.New()
	f, err := saveTar(ctx, meta, metaPath, h)
	if err != nil {
		return nil, err
	}
	if f.Layout != LayoutSplit {
		os.Remove(metaPath)
		return nil, errkind.Wrap(errkind.Invalid, "the first file of a split image must hold metadata.yaml and no rootfs")
	}
	br := bufio.NewReaderSize(rootfs, 64<<10)
	if head, _ := br.Peek(4); string(head) == "hsqs" {
		f.RootfsFormat = FormatSquashfs
		n, err := saveSquashfs(ctx, br, rootfsPath, h)
		if err != nil {
			os.Remove(metaPath)
			return nil, err
		}
		f.Size += n
	} else {
		f.RootfsFormat = FormatTar
		rf, err := saveTar(ctx, br, rootfsPath, h)
		if err == nil && rf.Layout != LayoutRootfs {
			os.Remove(rootfsPath)
			err = errkind.Wrap(errkind.Invalid, "the rootfs file of a split image must be a root filesystem tarball or a squashfs")
		}
		if err != nil {
			os.Remove(metaPath)
			return nil, err
		}
		f.Size += rf.Size
	}
	f.Fingerprint = hex.EncodeToString(h.Sum(nil))
	return f, nil
}

// create makes the new file path, which remove deletes again unless keep
// is called: for every failure on the way.
func create(path string) (*os.File, func(), func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, nil, err
	}
	kept := false
	remove := func() {
		if !kept {
			f.Close()
			os.Remove(path)
		}
	}
	return f, remove, func() { kept = true }, nil
}

// finish syncs and closes a saved file.
func finish(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// saveTar copies the tarball r to path and through h, scanning it as it goes.
func saveTar(ctx context.Context, r io.Reader, path string, h hash.Hash) (*File, error) {
	out, remove, keep, err := create(path)
	if err != nil {
		return nil, err
	}
	defer remove()
	pr, pw := io.Pipe()
	type result struct {
		f   *File
		err error
	}
	scanned := make(chan result, 1)
	go func() {
		f, err := scan(ctx, pr)
		// Unblock the copy below whether the scan failed or ended early.
		pr.CloseWithError(errors.Join(err, errStop))
		scanned <- result{f, err}
	}()
	n, copyErr := io.Copy(io.MultiWriter(out, h, pw), r)
	pw.Close()
	res := <-scanned
	if res.err != nil {
		return nil, res.err
	}
	if copyErr != nil && !errors.Is(copyErr, errStop) {
		return nil, fmt.Errorf("read image: %w", copyErr)
	}
	if err := finish(out); err != nil {
		return nil, err
	}
	keep()
	res.f.Size = n
	return res.f, nil
}

// errStop ends the copy once the scan has read all it needs.
var errStop = errors.New("scan finished")

// scan reads a tarball to its end, telling its layout from its entries,
// reading its metadata and templates, and applying Extract's rules to
// the tree it holds.
func scan(ctx context.Context, r io.Reader) (*File, error) {
	tr, kind, err := compression.Decompress(r)
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "image is not a valid %s stream: %w", kind, err)
	}
	defer tr.Close()
	s := &scanner{plain: archive.NewVerifier(), rootfs: archive.NewVerifier(), f: &File{Compression: kind}}
	if err := archive.ReadEntries(ctx, tr, s.entry); err != nil {
		return nil, fmt.Errorf("image is not a sound image tarball (%s): %w", kind, err)
	}
	if err := s.layout(); err != nil {
		return nil, fmt.Errorf("image is not a sound image tarball (%s): %w", kind, err)
	}
	// Read to the end, so that a corrupt compressed trailer is caught.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "image is not a valid %s stream: %w", kind, err)
	}
	_, err = io.Copy(io.Discard, r)
	return s.f, err
}

// scanner judges a tarball both as a plain root filesystem and as a
// unified image, since which it is shows only at its end.
type scanner struct {
	f                   *File
	plain, rootfs       *archive.Verifier
	plainErr, rootfsErr error
	metadata            []byte
	rootfsEntries       int
	others              int
	templateBytes       int
}

func (s *scanner) entry(hdr *tar.Header, body io.Reader) error {
	if s.plainErr == nil {
		s.plainErr = s.plain.Check(hdr)
	}
	name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(hdr.Name, "./")), "/")
	switch {
	case name == metadataName && hdr.Typeflag == tar.TypeReg:
		if hdr.Size > maxMetadata {
			return errkind.Wrap(errkind.Invalid, "metadata.yaml is %d bytes: too large", hdr.Size)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return errkind.Wrap(errkind.Invalid, "metadata.yaml: %w", err)
		}
		s.metadata = b
	case strings.HasPrefix(name, templatesDir+"/") && hdr.Typeflag == tar.TypeReg:
		s.templateBytes += int(hdr.Size)
		if hdr.Size > maxMetadata || s.templateBytes > maxTemplates {
			return errkind.Wrap(errkind.Invalid, "templates are too large")
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return errkind.Wrap(errkind.Invalid, "template %s: %w", name, err)
		}
		if s.f.Templates == nil {
			s.f.Templates = map[string]string{}
		}
		s.f.Templates[strings.TrimPrefix(name, templatesDir+"/")] = string(b)
	case name == templatesDir || name == "." || name == "":
	case name == rootfsDir || strings.HasPrefix(name, rootfsDir+"/"):
		s.rootfsEntries++
		if s.rootfsErr == nil {
			h, _, err := archive.Strip(hdr, rootfsDir)
			if err == nil {
				err = s.rootfs.Check(h)
			}
			s.rootfsErr = err
		}
	default:
		s.others++
	}
	// Reading the body checks that the stream holds all of it.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return errkind.Wrap(errkind.Invalid, "entry %q: %w", hdr.Name, err)
	}
	return nil
}

// layout decides what the tarball was, once all of it is read.
func (s *scanner) layout() error {
	if s.metadata == nil || s.others > 0 {
		// A root filesystem, whatever else it holds.
		s.f.Layout, s.f.Templates = LayoutRootfs, nil
		return s.plainErr
	}
	m, err := ParseMetadata(s.metadata)
	if err != nil {
		return err
	}
	s.f.Metadata = m
	for p, t := range m.Templates {
		if _, ok := s.f.Templates[t.Template]; !ok {
			return errkind.Wrap(errkind.Invalid, "metadata.yaml: the template %q for %s is not in templates/", t.Template, p)
		}
	}
	if s.rootfsEntries == 0 {
		s.f.Layout = LayoutSplit
		return nil
	}
	s.f.Layout = LayoutUnified
	return s.rootfsErr
}

// saveSquashfs copies a squashfs rootfs to path and through h, then has
// unsquashfs check its superblock.
func saveSquashfs(ctx context.Context, r io.Reader, path string, h hash.Hash) (int64, error) {
	out, remove, keep, err := create(path)
	if err != nil {
		return 0, err
	}
	defer remove()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err != nil {
		return 0, fmt.Errorf("read rootfs: %w", err)
	}
	if err := finish(out); err != nil {
		return 0, err
	}
	if _, err := (runcmd.Cmd{Name: "unsquashfs", Args: []string{"-s", path}}).Run(ctx); err != nil {
		if errors.Is(err, errkind.Unavailable) {
			return 0, err
		}
		return 0, errkind.Wrap(errkind.Invalid, "the rootfs is not a sound squashfs: %w", err)
	}
	keep()
	return n, nil
}

// Spec names an image's files in the image store.
type Spec struct {
	Layout       string
	File         string // the image, or a split image's metadata
	Rootfs       string // a split image's rootfs
	RootfsFormat string
}

// Unpack extracts the root filesystem of the image s into root.
func Unpack(ctx context.Context, s Spec, root string) error {
	if s.Layout == LayoutSplit && s.RootfsFormat == FormatSquashfs {
		// unsquashfs refuses names that climb out since 4.5 (CVE-2021-40153).
		_, err := (runcmd.Cmd{Name: "unsquashfs", Args: []string{"-f", "-no-progress", "-d", root, s.Rootfs}}).Run(ctx)
		return err
	}
	file := s.File
	if s.Layout == LayoutSplit {
		file = s.Rootfs
	}
	return readTar(ctx, file, func(tr io.Reader) error {
		if s.Layout != LayoutUnified {
			return archive.Extract(ctx, tr, root, archive.ExtractOptions{})
		}
		x, err := archive.NewExtractor(root, archive.ExtractOptions{})
		if err != nil {
			return err
		}
		defer x.Close()
		err = archive.ReadEntries(ctx, tr, func(hdr *tar.Header, body io.Reader) error {
			h, ok, err := archive.Strip(hdr, rootfsDir)
			if err != nil || !ok {
				return err
			}
			return x.Entry(h, body)
		})
		if err != nil {
			return err
		}
		return x.Finish()
	})
}

// readTar hands the uncompressed stream of the tarball file to fn.
func readTar(ctx context.Context, file string, fn func(io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, _, err := compression.Decompress(f)
	if err != nil {
		return err
	}
	defer tr.Close()
	return fn(tr)
}

// Unified writes an LXD unified image to w: metadata.yaml, the
// templates, and the root filesystem under rootfs/, compressed as named.
// rootfs writes the tree's entries under the prefix it is given.
func Unified(ctx context.Context, w io.Writer, comp string, m *Metadata, templates map[string]string,
	rootfs func(tw *tar.Writer, prefix string) error) error {
	zw, err := compression.Compress(w, comp)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	meta, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := writeFile(tw, metadataName, meta); err != nil {
		return err
	}
	if len(templates) > 0 {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: templatesDir + "/", Mode: 0o755}); err != nil {
			return err
		}
		for name, body := range templates {
			if err := writeFile(tw, templatesDir+"/"+name, []byte(body)); err != nil {
				return err
			}
		}
	}
	if err := rootfs(tw, rootfsDir); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644}); err != nil {
		return err
	}
	_, err := io.Copy(tw, bytes.NewReader(b))
	return err
}

// Retar copies the root filesystem of the tarball image s into tw, under
// prefix: an image turned into another layout without unpacking it.
func Retar(ctx context.Context, s Spec, tw *tar.Writer, prefix string) error {
	file, from := s.File, ""
	switch s.Layout {
	case LayoutSplit:
		file = s.Rootfs
	case LayoutUnified:
		from = rootfsDir
	}
	return readTar(ctx, file, func(tr io.Reader) error { return copyTree(ctx, tr, from, tw, prefix) })
}

// CopyTree copies the root filesystem tar stream r into tw, under prefix,
// checking each entry as Extract would.
func CopyTree(ctx context.Context, r io.Reader, tw *tar.Writer, prefix string) error {
	return copyTree(ctx, r, "", tw, prefix)
}

// copyTree copies the entries of r that are under from ("" for all) into
// tw, moved under to.
func copyTree(ctx context.Context, r io.Reader, from string, tw *tar.Writer, to string) error {
	v := archive.NewVerifier()
	move := func(name string) string {
		return path.Join(to, strings.TrimPrefix(path.Clean("/"+name), "/"))
	}
	return archive.ReadEntries(ctx, r, func(hdr *tar.Header, body io.Reader) error {
		h := hdr
		if from != "" {
			var ok bool
			var err error
			if h, ok, err = archive.Strip(hdr, from); err != nil || !ok {
				return err
			}
		}
		if err := v.Check(h); err != nil {
			return err
		}
		out := *h
		out.Format, out.PAXRecords = tar.FormatUnknown, extraRecords(h.PAXRecords)
		out.Name = move(h.Name)
		if h.Typeflag == tar.TypeDir {
			out.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			out.Linkname = move(h.Linkname)
		}
		if err := tw.WriteHeader(&out); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	})
}

// extraRecords keeps the PAX records that carry more than the header's
// own fields (xattrs, mostly): the others would override the new name.
func extraRecords(recs map[string]string) map[string]string {
	var out map[string]string
	for k, v := range recs {
		switch k {
		case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}
