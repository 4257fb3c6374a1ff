package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/testutil"
)

// lxdSample is the metadata.yaml and templates of testdata/image/lxd, as
// entries of lxdTar.
func lxdSample(t *testing.T) []string {
	t.Helper()
	files := []string{"metadata.yaml", string(testutil.ReadTestdata(t, "image", "lxd", "metadata.yaml")), "templates/", ""}
	for name, body := range testutil.TestdataFiles(t, "image/lxd/templates", "*.tpl") {
		files = append(files, "templates/"+name, string(body))
	}
	return files
}

// lxdTar builds a tarball of the given files (name: body; a name ending
// in / is a directory).
func lxdTar(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: files[i], Mode: 0o644, Size: int64(len(files[i+1]))}
		if strings.HasSuffix(files[i], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

func TestUnifiedImage(t *testing.T) {
	ctx := context.Background()
	data := compress(t, compression.Gzip, lxdTar(t, append(lxdSample(t),
		"rootfs/", "", "rootfs/sbin/", "", "rootfs/sbin/init", "#!/bin/sh\n", "rootfs/etc/", "")...))
	dir := t.TempDir()
	f, err := image.Save(ctx, bytes.NewReader(data), filepath.Join(dir, "img"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if f.Layout != image.LayoutUnified || f.Fingerprint != hex.EncodeToString(sum[:]) {
		t.Fatalf("got %s %s, want unified %x", f.Layout, f.Fingerprint, sum)
	}
	if f.Metadata.Architecture != "x86_64" || f.Metadata.Properties["release"] != "1.35" ||
		f.Metadata.Templates["/etc/hostname"].Template != "hostname.tpl" || f.Templates["hostname.tpl"] == "" {
		t.Fatalf("metadata %+v, templates %v", f.Metadata, f.Templates)
	}
	testutil.NeedRoot(t, "unpacking gives files their owners")
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	if err := image.Unpack(ctx, image.Spec{Layout: f.Layout, File: filepath.Join(dir, "img")}, root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sbin/init")); string(b) != "#!/bin/sh\n" {
		t.Fatalf("rootfs/ was not unpacked as the root: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "metadata.yaml")); err == nil {
		t.Fatal("metadata.yaml was unpacked into the root")
	}
}

func TestSplitImage(t *testing.T) {
	ctx := context.Background()
	meta := compress(t, compression.Xz, lxdTar(t, lxdSample(t)...))
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "sbin"), 0o755)
	os.WriteFile(filepath.Join(tree, "sbin/init"), []byte("init"), 0o755)
	squash := filepath.Join(t.TempDir(), "rootfs.squashfs")
	testutil.NeedCommand(t, "mksquashfs")
	if out, err := exec.Command("mksquashfs", tree, squash, "-quiet", "-noappend").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v %s", err, out)
	}
	squashData, _ := os.ReadFile(squash)
	rootfsTar := compress(t, compression.Zstd, lxdTar(t, "sbin/", "", "sbin/init", "init"))
	for format, rootfs := range map[string][]byte{image.FormatTar: rootfsTar, image.FormatSquashfs: squashData} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			mp, rp := filepath.Join(dir, "meta"), filepath.Join(dir, "rootfs")
			f, err := image.SaveSplit(ctx, bytes.NewReader(meta), bytes.NewReader(rootfs), mp, rp)
			if err != nil {
				t.Fatal(err)
			}
			// LXD's rule: the SHA-256 of the metadata file, then the rootfs.
			sum := sha256.Sum256(append(append([]byte(nil), meta...), rootfs...))
			if f.Layout != image.LayoutSplit || f.RootfsFormat != format || f.Fingerprint != hex.EncodeToString(sum[:]) {
				t.Fatalf("got %s/%s %s, want %s %x", f.Layout, f.RootfsFormat, f.Fingerprint, format, sum)
			}
			testutil.NeedRoot(t, "unpacking gives files their owners")
			root := filepath.Join(dir, "root")
			os.Mkdir(root, 0o755)
			spec := image.Spec{Layout: f.Layout, File: mp, Rootfs: rp, RootfsFormat: f.RootfsFormat}
			if err := image.Unpack(ctx, spec, root); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "sbin/init")); string(b) != "init" {
				t.Fatalf("unpacked sbin/init: %q", b)
			}
		})
	}
	// A half of a split image is not an image.
	if _, err := image.Save(ctx, bytes.NewReader(meta), filepath.Join(t.TempDir(), "m")); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("metadata alone: %v", err)
	}
	dir := t.TempDir()
	if _, err := image.SaveSplit(ctx, bytes.NewReader(meta), bytes.NewReader([]byte("hsqs and garbage")), filepath.Join(dir, "m"), filepath.Join(dir, "r")); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("a corrupt squashfs: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused split image left %v", entries)
	}
}

func TestBadUnifiedImages(t *testing.T) {
	cases := testutil.TestdataFiles(t, "image/hostile", "*.tar")
	for name, yaml := range testutil.TestdataFiles(t, "image/metadata", "*.yaml") {
		cases[name] = lxdTar(t, "metadata.yaml", string(yaml), "templates/hostname.tpl", "x", "rootfs/", "")
	}
	cases["missing template"] = lxdTar(t, "metadata.yaml", string(testutil.ReadTestdata(t, "image", "lxd", "metadata.yaml")), "rootfs/", "")
	cases["huge metadata"] = lxdTar(t, "metadata.yaml", strings.Repeat("#", 2<<20), "rootfs/", "")
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := image.Save(context.Background(), bytes.NewReader(data), filepath.Join(dir, "img")); !errors.Is(err, errkind.Invalid) {
				t.Fatalf("Save: %v, want an Invalid error", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused image left %v", entries)
			}
		})
	}
}
