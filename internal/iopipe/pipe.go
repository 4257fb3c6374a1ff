package iopipe

import (
	"io"
	"sync"
)

// Buffer is the size of the buffer of the pipes that Run makes: the
// backup streams' chunk, so that a sender goes on making the next chunk
// while the one before is on its way.
const Buffer = 4 << 20

// Pipe is io.Pipe with a buffer of size bytes: a write returns once its
// bytes are in the buffer, so that the writer (a driver's send, a
// network) goes on while the reader is busy with what came before,
// rather than both taking turns. Closing either end works as io.Pipe's.
func Pipe(size int) (*PipeReader, *PipeWriter) {
	p := &pipe{buf: make([]byte, size)}
	p.cond = sync.NewCond(&p.mu)
	return &PipeReader{p}, &PipeWriter{p}
}

type pipe struct {
	mu   sync.Mutex
	cond *sync.Cond // broadcast on every change
	buf  []byte
	r, n int   // where the bytes held begin in buf, and how many
	werr error // why the writer closed: io.EOF when it ended well
	rerr error // why the reader closed
}

// PipeReader is the read end of a Pipe.
type PipeReader struct{ p *pipe }

// PipeWriter is the write end of a Pipe.
type PipeWriter struct{ p *pipe }

func (r *PipeReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && p.rerr == nil {
		p.cond.Wait()
	}
	switch {
	case p.rerr != nil:
		return 0, io.ErrClosedPipe
	case p.n == 0:
		return 0, p.werr
	}
	k := copy(b, p.buf[p.r:min(p.r+p.n, len(p.buf))])
	p.r, p.n = (p.r+k)%len(p.buf), p.n-k
	if p.n == 0 {
		p.r = 0 // the next write goes in one piece
	}
	p.cond.Broadcast()
	return k, nil
}

// Close closes the reader: writes fail with io.ErrClosedPipe.
func (r *PipeReader) Close() error { return r.CloseWithError(nil) }

// CloseWithError closes the reader: writes fail with err.
func (r *PipeReader) CloseWithError(err error) error {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.cond.Broadcast()
	return nil
}

func (w *PipeWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && p.rerr == nil && p.werr == nil {
			p.cond.Wait()
		}
		switch {
		case p.rerr != nil:
			return written, p.rerr
		case p.werr != nil:
			return written, io.ErrClosedPipe
		}
		// The free space from the end of what is held: up to the end of
		// buf, or up to its start once it has wrapped round.
		at := (p.r + p.n) % len(p.buf)
		end := len(p.buf)
		if at < p.r {
			end = p.r
		}
		k := copy(p.buf[at:end], b)
		p.n += k
		b = b[k:]
		written += k
		p.cond.Broadcast()
	}
	return written, nil
}

// Close closes the writer: reads return io.EOF once the buffer is empty.
func (w *PipeWriter) Close() error { return w.CloseWithError(nil) }

// CloseWithError closes the writer: reads return err (io.EOF when nil)
// once the buffer is empty.
func (w *PipeWriter) CloseWithError(err error) error {
	if err == nil {
		err = io.EOF
	}
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.cond.Broadcast()
	return nil
}
