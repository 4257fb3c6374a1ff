package archive

import (
	"archive/tar"
	"context"
	"io"
	"path"
)

// Verify reads the tar stream r to its end without writing anything, and
// refuses what Extract would refuse before touching the tree: names that are
// absolute or climb, entries written through a symlink of the same archive,
// links that leave the root, absurd sizes, and truncated or corrupt streams.
// It lets an archive be judged when it is accepted, long before it is unpacked.
func Verify(ctx context.Context, r io.Reader) error {
	v := NewVerifier()
	return ReadEntries(ctx, r, func(hdr *tar.Header, body io.Reader) error {
		if err := v.Check(hdr); err != nil {
			return err
		}
		// Reading the body checks that the stream holds all of it.
		if _, err := io.Copy(io.Discard, body); err != nil {
			return invalid("entry %q: %v", hdr.Name, err)
		}
		return nil
	})
}

// Verifier applies Verify's rules to one tree's headers as they come.
type Verifier struct{ symlinks map[string]bool }

// NewVerifier starts on a new tree.
func NewVerifier() *Verifier { return &Verifier{symlinks: map[string]bool{}} }

// Check refuses hdr if Extract would refuse it, given the entries before it.
func (v *Verifier) Check(hdr *tar.Header) error {
	name, err := checkHeader(hdr)
	if err != nil || !extracted(hdr.Typeflag) {
		return err
	}
	if dir := symlinkParent(v.symlinks, name); dir != "" {
		return invalid("entry %q: parent %q is a symlink", hdr.Name, dir)
	}
	if hdr.Typeflag == tar.TypeLink {
		target, _ := cleanName(hdr.Linkname)
		if dir := symlinkParent(v.symlinks, target); dir != "" || v.symlinks[target] {
			return invalid("hard link %q: target %q passes through a symlink", hdr.Name, hdr.Linkname)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		v.symlinks[name] = true
	} else {
		delete(v.symlinks, name)
	}
	return nil
}

// symlinkParent returns the first parent directory of name that is a symlink.
func symlinkParent(symlinks map[string]bool, name string) string {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if symlinks[dir] {
			return dir
		}
	}
	return ""
}
