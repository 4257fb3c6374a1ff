package storagetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/storage"
)

// Ready creates and mounts the pool of a driver just made by a constructor.
func Ready(t *testing.T, d storage.Driver, err error) storage.Driver {
	t.Helper()
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

// Reattach checks that a pool silo made on a file of its own comes back
// after detach (which does what a reboot does to it) when a new driver for
// it is mounted, that Ready tells a detached pool (where it can tell
// cheaply) from a mounted one, and that Destroy refuses while the pool
// holds a volume, then leaves none of the paths in leftovers.
func Reattach(t *testing.T, d storage.Driver, detach func() error, reopen func() (storage.Driver, error), leftovers ...string) {
	ctx := context.Background()
	root, err := d.CreateVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A deleted head kept for its snapshot must stay deleted after a reboot.
	if _, err := d.CreateVolume(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	oldSnap := storage.Ref{Volume: "old", Snapshot: "s"}
	if err := d.CreateSnapshot(ctx, oldSnap); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteVolume(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(ctx); err != nil {
		t.Fatalf("a mounted pool is not ready: %v", err)
	}
	if err := detach(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	again, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Ready(ctx); err != nil && !errors.Is(err, errkind.Unavailable) {
		t.Fatalf("a detached pool: %v, not unavailable", err)
	}
	if err := again.Mount(ctx); err != nil {
		t.Fatalf("reattach: %v", err)
	}
	if err := again.Ready(ctx); err != nil {
		t.Fatalf("a reattached pool is not ready: %v", err)
	}
	p, err := again.VolumePath(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "f")); err != nil || string(b) != "kept" {
		t.Fatalf("after reattach: %q %v", b, err)
	}
	if _, err := again.VolumePath(ctx, "old"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("a deleted head came back after reattach: %v", err)
	}
	_, release, err := again.OpenSnapshot(ctx, oldSnap)
	if err != nil {
		t.Fatalf("the snapshot of a deleted head after reattach: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := again.DeleteSnapshot(ctx, oldSnap); err != nil {
		t.Fatal(err)
	}
	if err := again.Destroy(ctx); err == nil {
		t.Fatal("a pool holding a volume was destroyed")
	}
	if err := again.DeleteVolume(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if err := again.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind after destroy: %v", p, err)
		}
	}
}
