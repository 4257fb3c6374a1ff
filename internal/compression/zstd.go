package compression

import (
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// blockSize is the input of one zstd frame. Frames are compressed at once
// on every core and written in order: a stream of frames is one valid zstd
// stream. A block this size loses little ratio to a single frame.
const blockSize = 2 << 20

// The encoders are shared: EncodeAll may be called from many goroutines.
var encoders = map[zstd.EncoderLevel]func() (*zstd.Encoder, error){
	zstd.SpeedDefault: newEncoder(zstd.SpeedDefault),
	zstd.SpeedFastest: newEncoder(zstd.SpeedFastest),
}

func newEncoder(level zstd.EncoderLevel) func() (*zstd.Encoder, error) {
	return sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderLevel(level), zstd.WithWindowSize(blockSize))
	})
}

// parallelZstd compresses blocks of its input concurrently. Memory stays
// bounded: at most one block per core, and one more, are in flight.
type parallelZstd struct {
	w     io.Writer
	enc   *zstd.Encoder
	buf   []byte
	queue chan pending
	done  chan struct{}
	// blocks and frames are buffers for reuse: a fresh 4 MiB per block
	// would leave the collector behind and memory high.
	blocks, frames chan []byte
	mu             sync.Mutex
	err            error
}

func newParallelZstd(w io.Writer, level zstd.EncoderLevel) (*parallelZstd, error) {
	enc, err := encoders[level]()
	if err != nil {
		return nil, err
	}
	n := runtime.GOMAXPROCS(0) + 1
	z := &parallelZstd{w: w, enc: enc, buf: make([]byte, 0, blockSize),
		queue: make(chan pending, n), done: make(chan struct{}),
		blocks: make(chan []byte, n+2), frames: make(chan []byte, n+2)}
	go z.writeOut()
	return z, nil
}

// pending is a frame on its way out, or, with written set, a Flush
// waiting for the frames before it to be written.
type pending struct {
	frame   chan []byte
	written chan struct{}
}

func (z *parallelZstd) writeOut() {
	defer close(z.done)
	for p := range z.queue {
		if p.written != nil {
			close(p.written)
			continue
		}
		out := <-p.frame
		if z.failed() == nil {
			if _, err := z.w.Write(out); err != nil {
				z.fail(err)
			}
		}
		reuse(z.frames, out)
	}
}

func (z *parallelZstd) fail(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = err
	}
}

func (z *parallelZstd) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *parallelZstd) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := z.failed(); err != nil {
			return n, err
		}
		k := copy(z.buf[len(z.buf):cap(z.buf)], p)
		z.buf = z.buf[:len(z.buf)+k]
		p, n = p[k:], n+k
		if len(z.buf) == cap(z.buf) {
			z.flush()
		}
	}
	return n, nil
}

// flush hands the current block to a worker; the queue's bound holds the
// writer back when the workers or the output fall behind.
func (z *parallelZstd) flush() {
	block := z.buf
	z.buf = take(z.blocks, blockSize)
	ch := make(chan []byte, 1)
	z.queue <- pending{frame: ch}
	go func() {
		ch <- z.enc.EncodeAll(block, take(z.frames, blockSize/2))
		reuse(z.blocks, block)
	}()
}

// take returns an empty buffer from free, or a new one.
func take(free chan []byte, size int) []byte {
	select {
	case b := <-free:
		return b[:0]
	default:
		return make([]byte, 0, size)
	}
}

// reuse puts b back in free, unless free is full.
func reuse(free chan []byte, b []byte) {
	select {
	case free <- b:
	default:
	}
}

// Flush writes out, as frames of their own, all it was given so far.
func (z *parallelZstd) Flush() error {
	if len(z.buf) > 0 {
		z.flush()
	}
	written := make(chan struct{})
	z.queue <- pending{written: written}
	<-written
	return z.failed()
}

func (z *parallelZstd) Close() error {
	if len(z.buf) > 0 {
		z.flush()
	}
	close(z.queue)
	<-z.done
	return z.failed()
}
