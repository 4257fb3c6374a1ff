package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
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
			return invalid("entry %q: %w", hdr.Name, err)
		}
		return nil
	})
}

// Verifier applies Verify's rules to one tree's headers as they come. It
// keeps the tree that the entries so far make, as Extract makes it: later
// entries replace earlier ones, and missing parents are made as directories.
type Verifier struct{ root *vnode }

// vnode is a path of that tree: its type, and a directory's entries.
type vnode struct {
	typ  byte
	kids map[string]*vnode
}

// NewVerifier starts on a new tree.
func NewVerifier() *Verifier { return &Verifier{root: &vnode{typ: tar.TypeDir}} }

// Check refuses hdr if Extract would refuse it, given the entries before it.
func (v *Verifier) Check(hdr *tar.Header) error {
	name, err := checkHeader(hdr)
	if err != nil || name == "" || !extracted(hdr.Typeflag) {
		return err
	}
	dir, base := path.Split(name)
	parent, err := v.dir(dir, true)
	if err != nil {
		return invalid("entry %q: %v", hdr.Name, err)
	}
	typ := hdr.Typeflag
	if typ == tar.TypeLink {
		target, _ := cleanName(hdr.Linkname) // checked by checkHeader
		tdir, tbase := path.Split(target)
		tparent, err := v.dir(tdir, false)
		if err != nil {
			return invalid("hard link %q: target %q: %v", hdr.Name, hdr.Linkname, err)
		}
		var t *vnode
		if tparent != nil {
			t = tparent.kids[tbase]
		}
		if t == nil || t.typ == tar.TypeDir {
			return invalid("hard link %q: target %q does not exist or is a directory", hdr.Name, hdr.Linkname)
		}
		typ = t.typ
	}
	if old := parent.kids[base]; old != nil && old.typ == tar.TypeDir && typ == tar.TypeDir {
		return nil // a directory stays, with its entries
	}
	if parent.kids == nil {
		parent.kids = map[string]*vnode{}
	}
	parent.kids[base] = &vnode{typ: typ}
	return nil
}

// dir walks to the directory dir, making missing ones when create is set
// and returning nil for a missing one otherwise. A symlink or anything
// else that is not a directory on the way is an error, as for Extract.
func (v *Verifier) dir(dir string, create bool) (*vnode, error) {
	n := v.root
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return n, nil
	}
	comps := strings.Split(dir, "/")
	for i, c := range comps {
		k := n.kids[c]
		if k == nil {
			if !create {
				return nil, nil
			}
			if n.kids == nil {
				n.kids = map[string]*vnode{}
			}
			k = &vnode{typ: tar.TypeDir}
			n.kids[c] = k
		}
		if k.typ != tar.TypeDir {
			what := "is not a directory"
			if k.typ == tar.TypeSymlink {
				what = "is a symlink"
			}
			return nil, fmt.Errorf("parent %q %s", strings.Join(comps[:i+1], "/"), what)
		}
		n = k
	}
	return n, nil
}
