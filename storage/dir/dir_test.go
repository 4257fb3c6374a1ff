package dir_test

import (
	"testing"

	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/dir"
	"github.com/silo-dev/silo/storage/storagetest"
)

func TestConformance(t *testing.T) {
	testutil.NeedRoot(t, "the conformance suite's trees have files of other owners, and device nodes")
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		d, err := dir.New(storage.Config{ID: "p", Driver: "dir", Source: t.TempDir()})
		return storagetest.Ready(t, d, err)
	})
}
