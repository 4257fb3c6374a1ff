package backup

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/iopipe"
)

// Handler is what Read hands a backup's contents to, as they come.
type Handler interface {
	// Begin receives the checked index before anything else. For the
	// portable form it returns the directory that every tree is unpacked
	// into, one after the other, and the shift of the owners as they are
	// unpacked (see archive.ExtractOptions).
	Begin(x *Index) (root string, ids idmap.Shift, err error)
	// TreeDone says that part i of the index's Parts is now in the root.
	TreeDone(i int) error
	// Stream receives driver stream k whole from r.
	Stream(k int, r io.Reader) error
}

// Read reads the backup stream r, compressed or not, and hands its
// contents to h. A stream that is corrupt, cut short, out of order, or
// that holds anything beyond its index is refused with errkind.Invalid.
func Read(ctx context.Context, r io.Reader, h Handler) error {
	dr, _, err := compression.Decompress(r)
	if err != nil {
		return invalid("the backup is not a valid compressed stream: %w", err)
	}
	defer dr.Close()
	rd := &reader{h: h}
	err = archive.ReadEntries(ctx, dr, rd.entry)
	if err == nil {
		err = rd.end()
	}
	rd.stop()
	if err != nil {
		return err
	}
	// A corrupt compressed trailer shows only at its end.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return invalid("the backup's compressed stream is corrupt: %w", err)
	}
	return nil
}

type reader struct {
	h     Handler
	index *Index
	root  string
	ids   idmap.Shift
	parts map[string]int
	// part is the tree being unpacked, and x its extractor (nil until its
	// first entry); done counts the parts handed over.
	part, done int
	x          *archive.Extractor
	// stream is the driver stream being received (-1 before the first).
	stream   int
	pw       *iopipe.PipeWriter
	received chan error
}

func (rd *reader) entry(hdr *tar.Header, body io.Reader) error {
	if rd.index == nil {
		return rd.readIndex(hdr, body)
	}
	name := strings.TrimPrefix(hdr.Name, "./")
	if rd.index.Optimized != "" {
		return rd.chunk(name, hdr, body)
	}
	top, rest, _ := strings.Cut(name, "/")
	prefix := top
	if top == snapshotsDir {
		snap, _, _ := strings.Cut(rest, "/")
		prefix = top + "/" + snap
	}
	i, ok := rd.parts[prefix]
	if !ok {
		return invalid("backup entry %q belongs to no part the index lists", hdr.Name)
	}
	if i < rd.part {
		return invalid("backup entry %q comes after the part it belongs to", hdr.Name)
	}
	if err := rd.finishTo(i); err != nil {
		return err
	}
	stripped, _, err := archive.Strip(hdr, prefix)
	if err != nil {
		return err
	}
	if rd.x == nil {
		rd.x, err = archive.NewExtractor(rd.root, archive.ExtractOptions{Whiteouts: i > 0 || rd.index.Base != "", Shift: rd.ids})
		if err != nil {
			return err
		}
	}
	return rd.x.Entry(stripped, body)
}

func (rd *reader) readIndex(hdr *tar.Header, body io.Reader) error {
	if strings.TrimPrefix(hdr.Name, "./") != indexName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxIndex {
		return invalid("not a silo backup: the first entry is %q, not %s", hdr.Name, indexName)
	}
	x := &Index{}
	if err := json.NewDecoder(io.LimitReader(body, maxIndex)).Decode(x); err != nil {
		return invalid("the backup's index is corrupt: %w", err)
	}
	if err := x.check(); err != nil {
		return err
	}
	root, ids, err := rd.h.Begin(x)
	if err != nil {
		return err
	}
	rd.index, rd.root, rd.ids, rd.stream = x, root, ids, -1
	rd.parts = map[string]int{}
	for i, p := range x.Parts() {
		rd.parts[p] = i
	}
	return nil
}

// finishTo hands over every part before i.
func (rd *reader) finishTo(i int) error {
	for ; rd.part < i; rd.part++ {
		if rd.x != nil {
			err := rd.x.Finish()
			rd.x.Close()
			rd.x = nil
			if err != nil {
				return err
			}
		}
		if err := rd.h.TreeDone(rd.part); err != nil {
			return err
		}
		rd.done++
	}
	return nil
}

func (rd *reader) chunk(name string, hdr *tar.Header, body io.Reader) error {
	dir, part, _ := strings.Cut(strings.TrimPrefix(name, streamsDir+"/"), "/")
	k, err := strconv.Atoi(dir)
	if !strings.HasPrefix(name, streamsDir+"/") || err != nil || part == "" || hdr.Typeflag != tar.TypeReg {
		return invalid("backup entry %q is not a stream chunk", hdr.Name)
	}
	if k != rd.stream {
		if k != rd.stream+1 || k >= len(rd.index.Streams) {
			return invalid("backup entry %q: stream %d out of order", hdr.Name, k)
		}
		if err := rd.closeStream(); err != nil {
			return err
		}
		rd.openStream(k)
	}
	src := &sourceReader{r: body}
	if _, err := io.Copy(rd.pw, src); err != nil {
		if src.err != nil {
			return invalid("stream %d: %v", k, err) // the backup is cut short
		}
		return fmt.Errorf("stream %d: %w", k, err) // the receiver's own failure
	}
	return nil
}

// sourceReader remembers a failure to read the backup, which tells it
// apart from a failure of the receiver the chunk is copied to.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (rd *reader) openStream(k int) {
	// The backup goes on arriving while the receiver applies a chunk.
	pr, pw := iopipe.Pipe(chunkSize)
	rd.stream, rd.pw, rd.received = k, pw, make(chan error, 1)
	go func() {
		err := rd.h.Stream(k, pr)
		// Unblock the writer if the receiver stopped early, with its failure.
		stopped := err
		if stopped == nil {
			stopped = errReceiverStopped
		}
		pr.CloseWithError(stopped)
		rd.received <- err
	}()
}

var errReceiverStopped = errors.New("the receiver stopped")

// closeStream ends the stream being received and waits for its receiver.
func (rd *reader) closeStream() error {
	if rd.pw == nil {
		return nil
	}
	rd.pw.Close()
	err := <-rd.received
	rd.pw = nil
	if err != nil {
		return fmt.Errorf("stream %d: %w", rd.stream, err)
	}
	rd.done++
	return nil
}

// end checks that the backup held everything its index lists.
func (rd *reader) end() error {
	if rd.index == nil {
		return invalid("not a silo backup: no %s", indexName)
	}
	if rd.index.Optimized != "" {
		if err := rd.closeStream(); err != nil {
			return err
		}
		if rd.done != len(rd.index.Streams) {
			return invalid("the backup is incomplete: %d of %d streams", rd.done, len(rd.index.Streams))
		}
		return nil
	}
	return rd.finishTo(len(rd.index.Parts()))
}

// stop releases what a failed read holds: an open extractor, a receiver
// still reading.
func (rd *reader) stop() {
	if rd.x != nil {
		rd.x.Close()
		rd.x = nil
	}
	if rd.pw != nil {
		rd.pw.CloseWithError(invalid("the backup ended in the middle of stream %d", rd.stream))
		<-rd.received
		rd.pw = nil
	}
}
