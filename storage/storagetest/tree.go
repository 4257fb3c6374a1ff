package storagetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/fsutil"
)

// caps says what the filesystem under test can store; zfs-fuse keeps no
// xattrs and only whole-second timestamps, OpenZFS, btrfs and ext4 keep both.
type caps struct {
	xattrs  bool
	nanoSec bool
}

func probeCaps(t *testing.T, root string) caps {
	t.Helper()
	p := filepath.Join(root, ".probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	c := caps{xattrs: unix.Lsetxattr(p, "user.probe", []byte("1"), 0) == nil}
	ts := time.Unix(1e9, 123456789)
	if err := os.Chtimes(p, ts, ts); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	c.nanoSec = st.ModTime().Equal(ts)
	if !c.xattrs {
		t.Log("this filesystem stores no extended attributes: xattr checks are left out")
	}
	if !c.nanoSec {
		t.Log("this filesystem stores whole-second timestamps: times are compared to the second")
	}
	return c
}

// writeFixture fills root with every kind of thing a root filesystem holds.
func writeFixture(t *testing.T, root string, c caps) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc/conf.d"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "var/empty"), 0o700))
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("base\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/conf.d/app"), []byte("key=value\n"), 0o600))
	must(os.Chown(filepath.Join(root, "etc/conf.d/app"), 1000, 1001))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(unix.Chmod(filepath.Join(root, "usr/bin/tool"), 0o4755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool-alias")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "etc/hostname.link")))
	must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "dev/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o600))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	must(os.WriteFile(filepath.Join(root, "usr/bin/big"), big, 0o755))
	f, err := os.Create(filepath.Join(root, "var/sparse"))
	must(err)
	_, err = f.WriteAt([]byte("end"), 64<<20)
	must(err)
	must(f.Close())
	if c.xattrs {
		must(unix.Lsetxattr(filepath.Join(root, "etc/hostname"), "user.origin", []byte("fixture"), 0))
		must(unix.Lsetxattr(filepath.Join(root, "usr/bin/tool"), "security.capability",
			[]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	}
	old := time.Date(2020, 2, 3, 4, 5, 6, 700000000, time.UTC)
	must(os.Chtimes(filepath.Join(root, "etc/hostname"), old, old))
	must(os.Chtimes(filepath.Join(root, "etc"), old, old))
}

// node is what a tree comparison looks at for one path.
type node struct {
	mode     uint32
	uid, gid uint32
	size     int64
	mtime    int64
	rdev     uint64
	link     string
	sum      string
	xattrs   string
	linkedTo string // first path of the same inode, for hard links
}

// readTree records every path under root.
func readTree(t *testing.T, root string, c caps) map[string]node {
	t.Helper()
	out := map[string]node{}
	firstPath := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".probe" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev}
		n.mtime = st.Mtim.Sec
		if c.nanoSec {
			n.mtime = st.Mtim.Nano()
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			n.size = st.Size
			n.sum = sum(t, p)
			if st.Nlink > 1 {
				k := [2]uint64{st.Dev, st.Ino}
				if first, ok := firstPath[k]; ok {
					n.linkedTo = first
				} else {
					firstPath[k] = rel
				}
			}
		case unix.S_IFLNK:
			n.link, _ = os.Readlink(p)
		case unix.S_IFDIR:
			if rel == "." {
				n.mtime = 0 // a mount point's root time is the filesystem's business
			}
		}
		if c.xattrs {
			x, err := fsutil.Xattrs(p)
			if err != nil {
				return err
			}
			var kv []string
			for k, v := range x {
				kv = append(kv, k+"="+hex.EncodeToString([]byte(v)))
			}
			sort.Strings(kv)
			n.xattrs = strings.Join(kv, ",")
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diffTrees lists how b differs from a; empty means equal.
func diffTrees(a, b map[string]node) []string {
	var out []string
	for p, na := range a {
		nb, ok := b[p]
		switch {
		case !ok:
			out = append(out, "missing "+p)
		case na != nb:
			out = append(out, fmt.Sprintf("%s: %+v != %+v", p, na, nb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	return out
}

func requireSameTree(t *testing.T, what, a, b string, c caps) {
	t.Helper()
	if d := diffTrees(readTree(t, a, c), readTree(t, b, c)); len(d) > 0 {
		if len(d) > 10 {
			d = append(d[:10], "...")
		}
		t.Fatalf("%s: trees differ:\n%s", what, strings.Join(d, "\n"))
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, os.ErrNotExist)
}

// WriteFixture fills root with one of every kind of file a root filesystem
// holds, as far as root's filesystem can store them.
func WriteFixture(t *testing.T, root string) {
	t.Helper()
	writeFixture(t, root, probeCaps(t, root))
}

// RequireSameTree fails the test unless the trees at a and b are equal in
// content and metadata, as far as both filesystems store them. What they
// store is probed in a and b, or, for read-only trees, in the two writable
// directories of the same filesystems that probes names.
func RequireSameTree(t *testing.T, what, a, b string, probes ...string) {
	t.Helper()
	pa, pb := a, b
	if len(probes) == 2 {
		pa, pb = probes[0], probes[1]
	}
	ca, cb := probeCaps(t, pa), probeCaps(t, pb)
	requireSameTree(t, what, a, b, caps{xattrs: ca.xattrs && cb.xattrs, nanoSec: ca.nanoSec && cb.nanoSec})
}
