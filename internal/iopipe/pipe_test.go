package iopipe

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// What goes in comes out whole and in order, whatever the sizes of the
// writes and reads against the buffer's.
func TestPipeCarriesAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20+17)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, size := range []int{1, 7, 4096, 1 << 21} {
		pr, pw := Pipe(size)
		go func() {
			rest := data
			for len(rest) > 0 {
				k := min(len(rest), 1+rng.IntN(3*size))
				if _, err := pw.Write(rest[:k]); err != nil {
					pw.CloseWithError(err)
					return
				}
				rest = rest[k:]
			}
			pw.Close()
		}()
		got, err := io.ReadAll(iotest.HalfReader(pr))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("buffer of %d: %d bytes of %d back, err %v", size, len(got), len(data), err)
		}
	}
}

// The writer's error reaches the reader after what it wrote; the reader's
// stops the writer, even one waiting for room.
func TestPipeClose(t *testing.T) {
	cut := errors.New("the source went away")
	pr, pw := Pipe(8)
	pw.Write([]byte("part"))
	pw.CloseWithError(cut)
	if got, err := io.ReadAll(pr); string(got) != "part" || err != cut {
		t.Errorf("after the writer's error: %q, %v", got, err)
	}
	if _, err := pw.Write([]byte("x")); err != io.ErrClosedPipe {
		t.Errorf("a write after close: %v", err)
	}

	full := errors.New("the pool is full")
	pr, pw = Pipe(8)
	done := make(chan error)
	go func() {
		_, err := pw.Write(make([]byte, 100)) // waits for room
		done <- err
	}()
	pr.CloseWithError(full)
	if err := <-done; err != full {
		t.Errorf("a writer whose reader stopped: %v, want %v", err, full)
	}
	if _, err := pr.Read(make([]byte, 1)); err != io.ErrClosedPipe {
		t.Errorf("a read after close: %v", err)
	}
}
