package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/backup"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

// order is a Handler that fails the test unless it is called in order:
// Begin first, then the trees or the streams one by one, each stream read
// to its end before the next begins and before Read returns.
type order struct {
	t              *testing.T
	root           string
	index          *backup.Index
	trees, streams int
	receiving      bool
}

func (o *order) Begin(x *backup.Index) (string, idmap.Shift, error) {
	if o.index != nil {
		o.t.Fatal("Begin called twice")
	}
	o.index = x
	return o.root, idmap.Shift{}, nil
}

func (o *order) TreeDone(i int) error {
	if o.index == nil || o.index.Optimized != "" || i != o.trees || i >= len(o.index.Parts()) {
		o.t.Fatalf("TreeDone(%d) after %d trees of %+v", i, o.trees, o.index)
	}
	o.trees++
	return nil
}

func (o *order) Stream(k int, r io.Reader) error {
	if o.index == nil || o.index.Optimized == "" || k != o.streams || k >= len(o.index.Streams) || o.receiving {
		o.t.Errorf("Stream(%d) after %d streams of %+v", k, o.streams, o.index)
	}
	o.streams++
	o.receiving = true
	_, err := io.Copy(io.Discard, r)
	o.receiving = false
	return err
}

// FuzzRead checks, on any stream, that Read refuses it as Invalid or hands
// over everything its index lists, in order (see order), that it returns
// only once its receivers are done, and that it writes nothing beside the
// root it is given.
//
// Its seeds are the backups of testdata/backup (see FuzzExtract in
// internal/archive for why they live there); inputs that once failed are
// kept in testdata/backup/fuzz.
func FuzzRead(f *testing.F) {
	testutil.AddSeeds(f, "*.tar", "backup", "backup/hostile", "backup/fuzz")
	f.Fuzz(func(t *testing.T, data []byte) {
		testutil.NeedRoot(t, "unpacking the trees gives files their owners")
		outer := t.TempDir()
		o := &order{t: t, root: filepath.Join(outer, "root")}
		if err := os.Mkdir(o.root, 0o755); err != nil {
			t.Fatal(err)
		}
		err := backup.Read(context.Background(), bytes.NewReader(testutil.FixTarChecksums(data)), o)
		if o.receiving {
			t.Fatal("Read returned while a stream was being received")
		}
		if entries, _ := os.ReadDir(outer); len(entries) != 1 {
			t.Fatalf("Read wrote beside its root: %v", entries)
		}
		if err != nil {
			if !errors.Is(err, errkind.Invalid) {
				t.Fatalf("Read: %v, not of kind Invalid", err)
			}
			return
		}
		if o.index.Optimized == "" && o.trees != len(o.index.Parts()) || o.index.Optimized != "" && o.streams != len(o.index.Streams) {
			t.Fatalf("Read accepted a backup with %d trees and %d streams of %+v", o.trees, o.streams, o.index)
		}
	})
}
