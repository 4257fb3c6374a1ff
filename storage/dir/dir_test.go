package dir_test

import (
	"context"
	"testing"

	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/dir"
	"github.com/silo-dev/silo/storage/storagetest"
)

func newPool(t *testing.T) storage.Driver {
	d, err := dir.New(storage.Config{ID: "p", Driver: "dir", Source: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Mount(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, newPool)
}
