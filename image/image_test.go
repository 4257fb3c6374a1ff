package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/testutil"
)

func rootfs(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		body := []byte("content of " + n)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t *testing.T, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case compression.None:
		return data
	case compression.Gzip:
		w = gzip.NewWriter(&buf)
	case compression.Zstd:
		w, err = zstd.NewWriter(&buf)
	case compression.Xz:
		w, err = xz.NewWriter(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSaveRecognizesCompressionByContent(t *testing.T) {
	ctx := context.Background()
	tarball := rootfs(t, "etc/os-release", "sbin/init")
	for _, kind := range []string{compression.None, compression.Gzip, compression.Zstd, compression.Xz} {
		t.Run(kind, func(t *testing.T) {
			data := compress(t, kind, tarball)
			dir := t.TempDir()
			// The name lies about the content on purpose.
			f, err := image.Save(ctx, bytes.NewReader(data), filepath.Join(dir, "img.tar.gz"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if f.Fingerprint != hex.EncodeToString(sum[:]) || f.Size != int64(len(data)) || f.Compression != kind {
				t.Fatalf("got %+v, want sha256 %x, size %d, %s", f, sum, len(data), kind)
			}
			testutil.NeedRoot(t, "unpacking gives files their owners")
			root := filepath.Join(dir, "root")
			os.Mkdir(root, 0o755)
			if err := image.Unpack(ctx, image.Spec{Layout: f.Layout, File: filepath.Join(dir, "img.tar.gz")}, root); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "sbin/init")); err != nil || string(b) != "content of sbin/init" {
				t.Fatalf("unpacked sbin/init: %q %v", b, err)
			}
		})
	}
}

func TestSaveRefusesBadImages(t *testing.T) {
	ctx := context.Background()
	good := rootfs(t, "a", "b")
	gz := compress(t, compression.Gzip, good)
	zst := compress(t, compression.Zstd, good)
	hostile := rootfs(t, "../../etc/evil")
	cases := map[string][]byte{
		"truncated tar":   good[:700],
		"truncated gzip":  gz[:len(gz)/2],
		"corrupt zstd":    append(append([]byte(nil), zst[:8]...), bytes.Repeat([]byte{0x55}, 200)...),
		"not an archive":  bytes.Repeat([]byte("not a tarball\n"), 100),
		"empty":           nil,
		"hostile, zipped": compress(t, compression.Zstd, hostile),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := image.Save(ctx, bytes.NewReader(data), filepath.Join(dir, "img"))
			if !errors.Is(err, errkind.Invalid) {
				t.Fatalf("Save: %v, want an error of kind Invalid", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a refused image left %v", entries)
			}
		})
	}
}
