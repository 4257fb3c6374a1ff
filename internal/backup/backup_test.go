package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/backup"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

// recorder is a Handler that notes what it is handed.
type recorder struct {
	root    string
	index   *backup.Index
	trees   []string // what the root held at each TreeDone
	streams []string
}

func (r *recorder) Begin(x *backup.Index) (string, idmap.Shift, error) {
	r.index = x
	return r.root, idmap.Shift{}, nil
}

func (r *recorder) TreeDone(i int) error {
	b, _ := os.ReadFile(filepath.Join(r.root, "f"))
	_, gone := os.Stat(filepath.Join(r.root, "old"))
	r.trees = append(r.trees, fmt.Sprintf("%d:%s:%v", i, b, gone != nil))
	return nil
}

func (r *recorder) Stream(k int, rd io.Reader) error {
	b, err := io.ReadAll(rd)
	r.streams = append(r.streams, fmt.Sprintf("%d:%d", k, len(b)))
	return err
}

func tree(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	return dir
}

// The portable form hands each tree over in order, differences applied.
func TestPortable(t *testing.T) {
	ctx := context.Background()
	s0 := tree(t, map[string]string{"f": "zero", "old": "x"})
	s1 := tree(t, map[string]string{"f": "one"})
	head := tree(t, map[string]string{"f": "head"})
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, "zstd", nil)
	if err != nil {
		t.Fatal(err)
	}
	x := &backup.Index{Name: "a", Snapshots: []backup.Snapshot{{Name: "s0"}, {Name: "s1"}}}
	if err := w.Index(x); err != nil {
		t.Fatal(err)
	}
	w.Snapshot(ctx, "s0", s0, "", idmap.Shift{})
	w.Snapshot(ctx, "s1", s1, s0, idmap.Shift{})
	w.Root(ctx, head, s1, idmap.Shift{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := &recorder{root: t.TempDir()}
	if err := backup.Read(ctx, bytes.NewReader(buf.Bytes()), r); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.trees, " "); got != "0:zero:false 1:one:true 2:head:true" {
		t.Fatalf("trees handed over: %s", got)
	}
	// Cut anywhere, the stream is refused.
	for _, n := range []int{0, 10, len(buf.Bytes()) / 2, len(buf.Bytes()) - 1} {
		r := &recorder{root: t.TempDir()}
		if err := backup.Read(ctx, bytes.NewReader(buf.Bytes()[:n]), r); !errors.Is(err, errkind.Invalid) {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
}

// Driver streams of any length come back whole, in order.
func TestStreams(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	w, _ := backup.NewWriter(&buf, "none", nil)
	x := &backup.Index{Name: "a", Snapshots: []backup.Snapshot{{Name: "s0"}}, Optimized: "btrfs",
		Streams: []backup.Stream{{Snapshot: "s0"}, {Parent: "s0"}}}
	if err := w.Index(x); err != nil {
		t.Fatal(err)
	}
	sizes := []int{9<<20 + 7, 1}
	for k, n := range sizes {
		if err := w.Stream(ctx, k, func(out io.Writer) error { _, err := out.Write(make([]byte, n)); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Stream(ctx, 2, func(io.Writer) error { return nil }); err == nil {
		t.Fatal("an empty stream was written")
	}
	w.Close()
	r := &recorder{}
	if err := backup.Read(ctx, &buf, r); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.streams, " "); got != fmt.Sprintf("0:%d 1:1", sizes[0]) {
		t.Fatalf("streams: %s", got)
	}
}

func TestBadIndexes(t *testing.T) {
	for name, x := range map[string]*backup.Index{
		"no name":              {},
		"snapshot path":        {Name: "a", Snapshots: []backup.Snapshot{{Name: "a/b"}}},
		"repeated snapshot":    {Name: "a", Snapshots: []backup.Snapshot{{Name: "s"}, {Name: "s"}}},
		"streams, no driver":   {Name: "a", Streams: []backup.Stream{{}}},
		"no root stream":       {Name: "a", Optimized: "zfs", Snapshots: []backup.Snapshot{{Name: "s"}}, Streams: []backup.Stream{{Snapshot: "s"}}},
		"parent after":         {Name: "a", Optimized: "zfs", Snapshots: []backup.Snapshot{{Name: "s"}}, Streams: []backup.Stream{{Parent: "s"}}},
		"unlisted snapshot":    {Name: "a", Optimized: "zfs", Streams: []backup.Stream{{Snapshot: "x"}, {}}},
		"root before the last": {Name: "a", Optimized: "zfs", Snapshots: []backup.Snapshot{{Name: "s"}}, Streams: []backup.Stream{{}, {Snapshot: "s"}}},
	} {
		w, _ := backup.NewWriter(io.Discard, "none", nil)
		if err := w.Index(x); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The hostile backups of testdata/backup/hostile are refused; the sound
// ones of testdata/backup are read whole.
func TestFixtures(t *testing.T) {
	testutil.NeedRoot(t, "unpacking the trees gives files their owners")
	ctx := context.Background()
	for name, data := range testutil.TestdataFiles(t, "backup/hostile", "*.tar") {
		if err := backup.Read(ctx, bytes.NewReader(data), &recorder{root: t.TempDir()}); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: %v, want an error of kind Invalid", name, err)
		}
	}
	for name, want := range map[string]string{"portable.tar": "trees 3, streams 0", "optimized.tar": "trees 0, streams 2", "bad-config.tar": "trees 2, streams 0"} {
		r := &recorder{root: t.TempDir()}
		if err := backup.Read(ctx, bytes.NewReader(testutil.ReadTestdata(t, "backup", name)), r); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got := fmt.Sprintf("trees %d, streams %d", len(r.trees), len(r.streams)); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
