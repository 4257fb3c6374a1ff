package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

type tentry struct {
	hdr  tar.Header
	body string
}

func build(t *testing.T, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, body string) tentry {
	return tentry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: body}
}

// Every hostile archive of testdata/archive/hostile is refused by Verify
// and by Extract, which writes nothing outside its root.
func TestHostileArchivesAreRefused(t *testing.T) {
	cases := testutil.TestdataFiles(t, "archive/hostile", "*.tar")
	if len(cases) == 0 {
		t.Fatal("no hostile archives in testdata/archive/hostile")
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if err := archive.Verify(context.Background(), bytes.NewReader(data)); !errors.Is(err, errkind.Invalid) {
				t.Errorf("Verify: %v, want an error of kind Invalid", err)
			}
			testutil.NeedRoot(t, "extraction gives entries their owners")
			outer := t.TempDir()
			root := filepath.Join(outer, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			err := archive.Extract(context.Background(), bytes.NewReader(data), root, archive.ExtractOptions{})
			if err == nil {
				t.Fatal("a hostile archive was extracted")
			}
			if !errors.Is(err, errkind.Invalid) {
				t.Errorf("error %q is not of kind Invalid", err)
			}
			entries, _ := os.ReadDir(outer)
			if len(entries) != 1 {
				t.Fatalf("something was written beside the root: %v", entries)
			}
			if _, err := os.Stat("/etc/escape"); err == nil {
				t.Fatal("an entry escaped to /etc")
			}
		})
	}
}

func TestExtractReplacesAndWhiteouts(t *testing.T) {
	testutil.NeedRoot(t, "extraction gives entries their owners")
	root := t.TempDir()
	ctx := context.Background()
	first := build(t,
		tentry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		file("etc/a", "1"), file("etc/b", "2"),
		tentry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/l", Linkname: "/etc/a"}},
		tentry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "etc/a2", Linkname: "etc/a"}})
	if err := archive.Extract(ctx, bytes.NewReader(first), root, archive.ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/a2")); string(b) != "1" {
		t.Fatalf("hard link holds %q", b)
	}
	diff := build(t, file("etc/.wh.b", ""), file("etc/a", "new"))
	if err := archive.Extract(ctx, bytes.NewReader(diff), root, archive.ExtractOptions{Whiteouts: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/b")); !os.IsNotExist(err) {
		t.Fatal("whiteout did not delete etc/b")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/a")); string(b) != "new" {
		t.Fatalf("etc/a holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/a2")); string(b) != "1" {
		t.Fatalf("replacing a path changed its old hard link: %q", b)
	}
}

// A difference stream must not look paths up in the base through a
// symlink: there, bin -> usr/bin, and the new tree's bin/sub/f looks just
// like usr/bin/sub/f.
func TestDiffDoesNotFollowBaseSymlinks(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	base, cur := filepath.Join(top, "base"), filepath.Join(top, "cur")
	when := time.Unix(1e9, 0)
	mk := func(root string, binIsDir bool) {
		t.Helper()
		for _, d := range []string{"usr/bin/sub"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		files := []string{"usr/bin/sub/f"}
		if binIsDir {
			if err := os.MkdirAll(filepath.Join(root, "bin/sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			files = append(files, "bin/sub/f")
		} else if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			p := filepath.Join(root, f)
			if err := os.WriteFile(p, []byte("same"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(base, false)
	mk(cur, true)
	var diff bytes.Buffer
	if err := archive.Write(ctx, &diff, cur, base); err != nil {
		t.Fatal(err)
	}
	if err := archive.Extract(ctx, &diff, base, archive.ExtractOptions{Whiteouts: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "bin/sub/f")); err != nil || string(b) != "same" {
		t.Fatalf("bin/sub/f after applying the difference: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(base, "bin")); err != nil || !fi.IsDir() {
		t.Fatalf("bin is not a directory after applying the difference: %v", err)
	}
}

// Verify accepts an ordinary root filesystem (testdata/archive/ordinary.tar):
// absolute symlinks (resolved inside the container), hard links, and a
// symlink that a later entry replaces by a directory.
func TestVerifyAcceptsOrdinaryArchives(t *testing.T) {
	data := testutil.ReadTestdata(t, "archive", "ordinary.tar")
	if err := archive.Verify(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// Two trees in one stream, each under its own prefix, come back apart; a
// hard link that leaves its prefix is refused.
func TestPrefixedTrees(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(a, "f"), []byte("one"), 0o640)
	os.Link(filepath.Join(a, "f"), filepath.Join(a, "g"))
	os.MkdirAll(filepath.Join(b, "d"), 0o700)
	os.WriteFile(filepath.Join(b, "d", "h"), []byte("two"), 0o600)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for prefix, root := range map[string]string{"x/one": a, "two": b} {
		if err := archive.WriteTree(ctx, tw, root, "", prefix, idmap.Shift{}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	outs := map[string]string{"x/one": t.TempDir(), "two": t.TempDir()}
	xs := map[string]*archive.Extractor{}
	for p, dir := range outs {
		x, err := archive.NewExtractor(dir, archive.ExtractOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		xs[p] = x
	}
	err := archive.ReadEntries(ctx, &buf, func(hdr *tar.Header, body io.Reader) error {
		for p, x := range xs {
			if h, ok, err := archive.Strip(hdr, p); err != nil || ok {
				if err != nil {
					return err
				}
				return x.Entry(h, body)
			}
		}
		return fmt.Errorf("entry %q under no prefix", hdr.Name)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if err := x.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	var s1, s2 syscall.Stat_t
	syscall.Stat(filepath.Join(outs["x/one"], "f"), &s1)
	syscall.Stat(filepath.Join(outs["x/one"], "g"), &s2)
	if s1.Ino != s2.Ino || s1.Mode&0o777 != 0o640 {
		t.Errorf("hard link or mode lost: %+v %+v", s1, s2)
	}
	if got, _ := os.ReadFile(filepath.Join(outs["two"], "d", "h")); string(got) != "two" {
		t.Errorf("second tree: got %q", got)
	}

	hdr := &tar.Header{Typeflag: tar.TypeLink, Name: "two/x", Linkname: "x/one/f"}
	if _, _, err := archive.Strip(hdr, "two"); !errors.Is(err, errkind.Invalid) {
		t.Errorf("hard link out of its prefix: got %v", err)
	}
}

// A tree whose owners are shifted on disk goes out with the IDs inside
// (the writer's shift), and comes in shifted again (the extractor's).
func TestShiftedOwners(t *testing.T) {
	testutil.NeedRoot(t, "chown")
	ctx := context.Background()
	m := &idmap.Map{UID: 1000000, GID: 2000000, Size: 65536}
	src := t.TempDir()
	os.Chown(src, 1000000, 2000000)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	os.Chown(filepath.Join(src, "f"), 1001000, 2000100)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := archive.WriteTree(ctx, tw, src, "", "", idmap.Shift{From: m}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	owners := map[string][2]int{}
	archive.ReadEntries(ctx, bytes.NewReader(buf.Bytes()), func(hdr *tar.Header, _ io.Reader) error {
		owners[hdr.Name] = [2]int{hdr.Uid, hdr.Gid}
		return nil
	})
	if owners["."] != [2]int{0, 0} || owners["f"] != [2]int{1000, 100} {
		t.Fatalf("owners in the stream: %v", owners)
	}
	dst := t.TempDir()
	if err := archive.Extract(ctx, bytes.NewReader(buf.Bytes()), dst, archive.ExtractOptions{Shift: idmap.Shift{To: m}}); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dst, "f"), &st); err != nil || st.Uid != 1001000 || st.Gid != 2000100 {
		t.Fatalf("extracted f: %d:%d (%v)", st.Uid, st.Gid, err)
	}
}
