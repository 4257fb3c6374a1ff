package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage/storagetest"
)

// busyboxEntries hands the entries of the busybox test image to fn.
func busyboxEntries(t *testing.T, fn func(hdr *tar.Header, body io.Reader)) {
	t.Helper()
	f, err := os.Open(testImage(t, "busybox-image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(hdr, tr)
	}
}

// lxdFiles writes the LXD metadata and templates of testdata/image/lxd
// into tw.
func lxdFiles(t *testing.T, tw *tar.Writer) {
	add := func(name string, body []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644})
		tw.Write(body)
	}
	add("metadata.yaml", testutil.ReadTestdata(t, "image", "lxd", "metadata.yaml"))
	for name, body := range testutil.TestdataFiles(t, "image/lxd/templates", "*.tpl") {
		add("templates/"+name, body)
	}
}

// unifiedImage repackages the busybox image as an LXD unified image.
func unifiedImage(t *testing.T) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	lxdFiles(t, tw)
	busyboxEntries(t, func(hdr *tar.Header, body io.Reader) {
		h := *hdr
		h.Name = path.Join("rootfs", h.Name)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join("rootfs", h.Linkname)
		}
		tw.WriteHeader(&h)
		io.Copy(tw, body)
	})
	tw.Close()
	zw.Close()
	return writeFile(t, buf.Bytes())
}

// splitImage makes an LXD split image of the busybox image, its rootfs a squashfs.
func splitImage(t *testing.T) (meta, rootfs string) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	lxdFiles(t, tw)
	tw.Close()
	meta = filepath.Join(t.TempDir(), "meta.tar")
	os.WriteFile(meta, buf.Bytes(), 0o644)
	tree := t.TempDir()
	f, _ := os.Open(testImage(t, "busybox-image.sh"))
	defer f.Close()
	zr, _ := gzip.NewReader(f)
	if err := archive.Extract(context.Background(), zr, tree, archive.ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	rootfs = filepath.Join(t.TempDir(), "rootfs.squashfs")
	if out, err := exec.Command("mksquashfs", tree, rootfs, "-quiet", "-noappend").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v %s", err, out)
	}
	return meta, rootfs
}

func sha256Files(t *testing.T, files ...string) string {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LXD's unified and split images import with LXD's fingerprints, show
// their metadata, boot, and have their templates rendered on create, copy
// and start.
func TestLXDImages(t *testing.T) {
	e := newEnv(t, "dir")
	unified := unifiedImage(t)
	meta, rootfs := splitImage(t)
	e.ok("image", "import", unified, "--alias", "unified")
	e.ok("image", "import", meta, rootfs, "--alias", "split")
	var info api.Image
	e.json(&info, "image", "info", "unified")
	if info.Fingerprint != sha256Files(t, unified) || info.Layout != "unified" || info.Architecture != "x86_64" ||
		info.Properties["description"] != "BusyBox test image" || len(info.Templates) != 3 {
		t.Fatalf("unified image info: %+v", info)
	}
	e.json(&info, "image", "info", "split")
	if info.Fingerprint != sha256Files(t, meta, rootfs) || info.Layout != "split" || info.RootfsFormat != "squashfs" {
		t.Fatalf("split image info: %+v", info)
	}
	for _, img := range []string{"unified", "split"} {
		name := "from-" + img
		e.launch(img, name, "-c", "user.tier=gold")
		if got := e.ok("exec", name, "--", "cat", "/etc/hostname", "/etc/motd", "/etc/first-boot"); got != name+"\nwelcome to "+name+" (start) gold\nmade by create\n" {
			t.Fatalf("%s: templates rendered %q", img, got)
		}
		e.ok("stop", name, "--force")
	}
	e.ok("copy", "from-unified", "copied")
	e.ok("file", "push", writeFile(t, []byte("kept\n")), "copied/etc/first-boot")
	e.ok("config", "set", "copied", "user.tier=silver")
	e.ok("start", "copied", "--wait")
	if got := e.ok("exec", "copied", "--", "cat", "/etc/hostname", "/etc/motd", "/etc/first-boot"); got != "copied\nwelcome to copied (start)\nkept\n" {
		t.Fatalf("copy: templates rendered %q", got)
	}
	e.ok("stop", "copied", "--force")
	e.fails(2, "fingerprint mismatch", "image", "import", unified, "--fingerprint", strings.Repeat("0", 64))
	e.ok("image", "import", unified, "--fingerprint", sha256Files(t, unified))
	e.consistent()
}

// sameButIdentity compares the roots of instances a and b, apart from
// the machine ID and hostname that every instance has of its own.
func sameButIdentity(t *testing.T, e *env, a, b string) {
	t.Helper()
	withTree(t, e, a, "", func(ra string) {
		withTree(t, e, b, "", func(rb string) {
			for _, r := range []string{ra, rb} {
				os.Remove(filepath.Join(r, "etc/machine-id"))
				os.Remove(filepath.Join(r, "etc/hostname"))
				when := time.Unix(1e9, 0)
				os.Chtimes(filepath.Join(r, "etc"), when, when)
			}
			storagetest.RequireSameTree(t, b, ra, rb)
		})
	})
}

// Images go out as LXD unified images in every compression and come
// back the same; instances and snapshots publish as images.
func TestImageExportAndPublish(t *testing.T) {
	e := bootEnv(t, "dir")
	dir := t.TempDir()
	unified := unifiedImage(t)
	e.ok("image", "import", unified, "--alias", "unified")
	// A unified image in the compression asked for goes out as it came.
	same := filepath.Join(dir, "same.tar.gz")
	e.ok("image", "export", "unified", "-o", same, "--compression", "gzip")
	if sha256Files(t, same) != sha256Files(t, unified) {
		t.Fatal("the exported unified image differs from the imported one")
	}
	e.ok("create", "bb", "orig")
	for _, comp := range []string{"zstd", "gzip", "xz", "none"} {
		out := filepath.Join(dir, "bb."+comp)
		e.ok("image", "export", "bb", "-o", out, "--compression", comp)
		e.ok("image", "import", out, "--alias", "bb-"+comp)
		var info struct{ Layout, Compression, Architecture string }
		e.json(&info, "image", "info", "bb-"+comp)
		if info.Layout != "unified" || info.Compression != comp || info.Architecture == "" {
			t.Fatalf("%s: exported image is %+v", comp, info)
		}
		e.ok("create", "bb-"+comp, "from-"+comp)
		sameButIdentity(t, e, "orig", "from-"+comp)
	}
	piped := e.ok("image", "export", "bb", "-o", "-")
	if !strings.Contains(e.runInOK([]byte(piped), "image", "import", "-"), "already imported") {
		t.Fatal("a piped export is not the same image as a file export")
	}

	// Publish a snapshot, and a running instance.
	e.ok("file", "push", writeFile(t, []byte("v1\n")), "orig/etc/version")
	e.ok("snapshot", "create", "orig")
	e.ok("file", "push", writeFile(t, []byte("v2\n")), "orig/etc/version")
	e.ok("publish", "orig/snap0", "--alias", "v1", "--property", "release=v1")
	e.ok("start", "orig", "--wait")
	e.ok("publish", "orig", "--alias", "v2", "--compression", "gzip")
	for _, v := range []string{"v1", "v2"} {
		e.ok("create", v, "new-"+v)
		if got := e.ok("file", "pull", "new-"+v+"/etc/version", "-"); got != v+"\n" {
			t.Fatalf("published %s holds %q", v, got)
		}
	}
	var info struct{ Properties map[string]string }
	e.json(&info, "image", "info", "v1")
	if info.Properties["release"] != "v1" || info.Properties["description"] != "published from orig/snap0" {
		t.Fatalf("published properties %v", info.Properties)
	}
	e.ok("stop", "orig", "--force")

	e.fails(4, "already exists", "image", "export", "bb", "-o", same)
	e.fails(2, "unknown compression", "image", "export", "bb", "-o", filepath.Join(dir, "x"), "--compression", "lz4")
	e.fails(3, "not found", "publish", "nothing", "--alias", "x")
	e.fails(3, "not found", "publish", "orig/nosnap", "--alias", "x")
	e.fails(2, "cannot build", "image", "build", "debian/hamm")
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("a refused export left its file")
	}
	e.consistent()
}

// image build makes bootable images of every supported Debian release.
func TestImageBuild(t *testing.T) {
	testutil.NeedCommand(t, "mmdebstrap")
	parent := newEnv(t, "dir")
	// At once: a build waits mostly on the mirror and on dpkg, one core
	// each, and the three in turn took over a minute.
	for _, release := range []string{"bullseye", "bookworm", "trixie"} {
		t.Run(release, func(t *testing.T) {
			t.Parallel()
			e := *parent
			e.t = t
			e.onHostNetwork(func() { e.ok("image", "build", "debian/"+release, "--alias", release, "--include", "less") })
			var info struct{ Properties map[string]string }
			e.json(&info, "image", "info", release)
			if info.Properties["release"] != release || info.Properties["os"] != "debian" {
				t.Fatalf("properties %v", info.Properties)
			}
			e.launch(release, "d-"+release)
			if got := e.run("exec", "d-"+release, "--", "systemctl", "is-system-running"); got.out != "running\n" && got.out != "degraded\n" {
				t.Fatalf("systemd is %q", got.out)
			}
			if got := e.ok("exec", "d-"+release, "--", "sh", "-c", "cat /etc/hostname; command -v less"); got != "d-"+release+"\n/usr/bin/less\n" {
				t.Fatalf("got %q", got)
			}
			e.ok("stop", "d-"+release, "--timeout", "60s")
		})
	}
}
