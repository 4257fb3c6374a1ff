// Package compression reads and writes the compressed streams that images
// and backups travel in, in-process: zstd (multi-threaded), gzip and xz are
// written, and those plus bzip2 are recognized by content and read.
package compression

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/silo-dev/silo/errkind"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names, as shown to people.
const (
	None = "none"
	Gzip = "gzip"
	Zstd = "zstd"
	// ZstdFast is zstd at its fastest level: a few percent larger, and
	// written in about half the time, which is what a copy between hosts
	// is waiting on.
	ZstdFast = "zstd-fast"
	Xz       = "xz"
	Bzip2    = "bzip2"
)

var magics = []struct {
	name  string
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Bzip2, []byte("BZh")},
}

// Names lists the compressions a stream can be written with.
var Names = []string{Zstd, ZstdFast, Gzip, Xz, None}

// Check refuses a compression that cannot be written.
func Check(name string) error {
	for _, n := range Names {
		if n == name {
			return nil
		}
	}
	return errkind.Wrap(errkind.Invalid, "unknown compression %q: use one of %s", name, strings.Join(Names, ", "))
}

// Compress returns a writer that compresses into w with the named
// compression; closing it flushes the stream but leaves w open.
func Compress(w io.Writer, name string) (io.WriteCloser, error) {
	switch name {
	case Zstd:
		return newParallelZstd(w, zstd.SpeedDefault)
	case ZstdFast:
		return newParallelZstd(w, zstd.SpeedFastest)
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Xz:
		return xz.NewWriter(w)
	case None:
		return nopCloser{w}, nil
	}
	return nil, Check(name)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Decompress recognizes the compression of r by its first bytes, never by a
// file name, and returns the uncompressed stream and the compression's name.
func Decompress(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, "", err
	}
	name := None
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			name = m.name
			break
		}
	}
	var rc io.ReadCloser
	switch name {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, name, fmt.Errorf("gzip: %w", err)
		}
		rc = zr
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, name, fmt.Errorf("zstd: %w", err)
		}
		rc = zstdCloser{zr}
	case Xz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, name, fmt.Errorf("xz: %w", err)
		}
		rc = io.NopCloser(xr)
	case Bzip2:
		rc = io.NopCloser(bzip2.NewReader(br))
	default:
		rc = io.NopCloser(br)
	}
	return rc, name, nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }
