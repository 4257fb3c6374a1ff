package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/testutil"
)

// FuzzExtract checks, on any tarball, that Verify and Extract agree (what
// one refuses the other refuses, as Invalid), that extraction never writes
// beside its root, and that an accepted tarball extracts again onto its own
// result.
//
// The seeds are the tarballs of the top-level testdata/archive, the
// project's one place for fixtures, added with f.Add; inputs that once
// failed are kept there too, in testdata/archive/fuzz. (go test -fuzz
// writes a failing input under this package's testdata/fuzz/FuzzExtract in
// its own format: move its bytes to testdata/archive/fuzz as a file.)
func FuzzExtract(f *testing.F) {
	testutil.AddSeeds(f, "*.tar", "archive", "archive/hostile", "archive/fuzz")
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		data = testutil.FixTarChecksums(data)
		verr := archive.Verify(ctx, bytes.NewReader(data))
		if verr != nil && !errors.Is(verr, errkind.Invalid) {
			t.Fatalf("Verify: %v, not of kind Invalid", verr)
		}
		testutil.NeedRoot(t, "extraction gives entries their owners")
		outer := t.TempDir()
		root, beside := filepath.Join(outer, "root"), filepath.Join(outer, "beside")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(beside, []byte("untouched"), 0o644); err != nil {
			t.Fatal(err)
		}
		xerr := archive.Extract(ctx, bytes.NewReader(data), root, archive.ExtractOptions{})
		if entries, _ := os.ReadDir(outer); len(entries) != 2 {
			t.Fatalf("extraction wrote beside its root: %v", entries)
		}
		if b, err := os.ReadFile(beside); err != nil || string(b) != "untouched" {
			t.Fatalf("extraction changed a file beside its root: %q %v", b, err)
		}
		switch {
		case verr != nil && xerr == nil:
			t.Fatalf("Verify refused what Extract accepted: %v", verr)
		case verr == nil && xerr != nil:
			t.Fatalf("Extract refused what Verify accepted: %v", xerr)
		case xerr != nil && !errors.Is(xerr, errkind.Invalid):
			t.Fatalf("Extract: %v, not of kind Invalid", xerr)
		case xerr == nil:
			// Later entries replace earlier ones: the archive goes again
			// onto what it made.
			if err := archive.Extract(ctx, bytes.NewReader(data), root, archive.ExtractOptions{}); err != nil {
				t.Fatalf("extracting again onto the result: %v", err)
			}
		}
	})
}
