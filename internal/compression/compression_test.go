package compression_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/compression"
)

// Every compression reads back what it wrote, across many zstd blocks
// and with writes of every size, and is recognized by content.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 9<<20+12345)
	for i := range data {
		if i%3 == 0 {
			data[i] = byte(rng.Uint32())
		} else {
			data[i] = byte(i / 1000)
		}
	}
	for _, name := range compression.Names {
		var buf bytes.Buffer
		w, err := compression.Compress(&buf, name)
		if err != nil {
			t.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(1<<20))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want := name
		if name == compression.ZstdFast {
			want = compression.Zstd // a zstd stream, written faster
		}
		r, got, err := compression.Decompress(&buf)
		if err != nil || got != want {
			t.Fatalf("%s: recognized as %q: %v", name, got, err)
		}
		back, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("%s: read back %d bytes, want %d: %v", name, len(back), len(data), err)
		}
	}
	if err := compression.Check("lz4"); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("lz4: %v", err)
	}
}

type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	if f.n++; f.n > 1 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A failed write of the compressed stream reaches the writer.
func TestZstdWriteError(t *testing.T) {
	w, _ := compression.Compress(&failing{}, compression.Zstd)
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = w.Write(make([]byte, 1<<20))
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("got %v", err)
	}
}

// A zstd stream's Flush writes out all it was given, which a reader of
// what was written so far reads back whole, before the stream ends.
func TestZstdFlush(t *testing.T) {
	var buf bytes.Buffer
	w, err := compression.Compress(&buf, compression.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("silo "), 3<<18) // more than one block, and a part
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.(interface{ Flush() error }).Flush(); err != nil {
		t.Fatal(err)
	}
	r, _, err := compression.Decompress(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes of %d after a flush: %v", len(got), len(data), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
