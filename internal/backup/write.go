package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
)

// Writer writes a backup stream. Call Index first, then Tree for each
// part the index lists (portable) or Stream for each stream (optimized),
// then Close.
type Writer struct {
	dst io.Writer
	zw  io.WriteCloser
	tw  *tar.Writer
}

// NewWriter starts a backup stream on w, compressed as named. progress,
// when not nil, is told of every uncompressed byte as it is written.
func NewWriter(w io.Writer, comp string, progress func(n int)) (*Writer, error) {
	zw, err := compression.Compress(w, comp)
	if err != nil {
		return nil, err
	}
	var tw io.Writer = zw
	if progress != nil {
		tw = counter{zw, progress}
	}
	return &Writer{dst: w, zw: zw, tw: tar.NewWriter(tw)}, nil
}

type counter struct {
	io.Writer
	add func(int)
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.Writer.Write(p)
	c.add(n)
	return n, err
}

// Index writes the index, which must come first.
func (w *Writer) Index(x *Index) error {
	x.Format = Format
	if err := x.check(); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	return w.file(indexName, b)
}

func (w *Writer) file(name string, b []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o600,
		ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := w.tw.Write(b)
	return err
}

// Snapshot writes the tree of snapshot name, found at root; base, when not
// empty, is the tree of the snapshot before it. The owners go out shifted
// by ids (see archive.WriteTree).
func (w *Writer) Snapshot(ctx context.Context, name, root, base string, ids idmap.Shift) error {
	return archive.WriteTree(ctx, w.tw, root, base, snapshotsDir+"/"+name, ids)
}

// Root writes the instance's root tree; base, when not empty, is the
// tree of its last snapshot; the owners go out shifted by ids.
func (w *Writer) Root(ctx context.Context, root, base string, ids idmap.Shift) error {
	return archive.WriteTree(ctx, w.tw, root, base, rootfsDir, ids)
}

// Stream writes driver stream k, which send writes, in chunks as it comes.
func (w *Writer) Stream(ctx context.Context, k int, send func(io.Writer) error) error {
	if err := iopipe.Run(send, func(r io.Reader) error { return w.chunks(k, r) }); err != nil {
		return fmt.Errorf("stream %d: %w", k, err)
	}
	return w.flush()
}

// flusher is a writer that can push out what it holds.
type flusher interface{ Flush() error }

// flush pushes what the writers hold on to the stream's reader, so that
// a driver stream's end reaches its receiver before the next stream is
// made: a receiver can hold its pool until then, and one zfs-fuse daemon
// serves both ends of a copy on one machine, which would otherwise wait
// on each other.
func (w *Writer) flush() error {
	if err := w.tw.Flush(); err != nil {
		return err
	}
	for _, x := range []any{w.zw, w.dst} {
		if f, ok := x.(flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) chunks(k int, r io.Reader) error {
	buf := make([]byte, chunkSize)
	for i := 0; ; i++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if werr := w.file(fmt.Sprintf("%s/%06d", streamDir(k), i), buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if i == 0 && n == 0 {
				return fmt.Errorf("stream %d is empty", k)
			}
			return nil
		case err != nil:
			return err
		}
	}
}

// Close ends the stream; it does not close the writer given to NewWriter.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		return err
	}
	return w.zw.Close()
}
