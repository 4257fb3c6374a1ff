package zfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/storagetest"
	"github.com/silo-dev/silo/storage/zfs"
)

// needZFS skips only where ZFS cannot run at all. With the tools installed
// but no kernel module or zfs-fuse daemon answering, it fails: that is a
// broken set-up, not a missing part (.ci/run starts zfs-fuse).
func needZFS(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t, "zfs tests make zpools")
	testutil.NeedCommand(t, "zpool")
	if out, err := exec.Command("zpool", "list").CombinedOutput(); err != nil {
		t.Fatalf("zfs does not answer (start the zfs-fuse daemon, or load the zfs module): %s", out)
	}
}

// loopConfig names test pools silo-test<pid>..., which .ci/run sweeps if a
// crashed test leaves one.
func loopConfig(id, state string, size int64) storage.Config {
	return storage.Config{ID: fmt.Sprintf("test%d%s", os.Getpid(), id), Driver: "zfs", Size: size, StateDir: state}
}

func TestConformance(t *testing.T) {
	needZFS(t)
	state := t.TempDir()
	cfg := loopConfig("", state, 2<<30)
	d, err := zfs.New(cfg)
	backing := storagetest.Ready(t, d, err)
	t.Cleanup(func() {
		if err := backing.Destroy(context.Background()); err != nil {
			t.Errorf("destroy backing pool: %v", err)
		}
	})
	// Every pool of the suite is a dataset of the one file-backed zpool.
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		i := n.Add(1)
		src := fmt.Sprintf("silo-%s/suite%d", cfg.ID, i)
		if out, err := exec.Command("zfs", "create", "-o", "mountpoint=none", src).CombinedOutput(); err != nil {
			t.Fatalf("create %s: %v %s", src, err, out)
		}
		t.Cleanup(func() { exec.Command("zfs", "destroy", src).Run() })
		d, err := zfs.New(storage.Config{ID: fmt.Sprintf("p%d", i), Driver: "zfs", Source: src, StateDir: state})
		return storagetest.Ready(t, d, err)
	})
}

// A file-backed zpool comes back after an export, as after a reboot, and
// Destroy removes its file.
func TestLoopPoolReattach(t *testing.T) {
	needZFS(t)
	cfg := loopConfig("re", t.TempDir(), 256<<20)
	d, err := zfs.New(cfg)
	pool := "silo-" + cfg.ID
	storagetest.Reattach(t, storagetest.Ready(t, d, err),
		func() error { return exec.Command("zpool", "export", pool).Run() },
		func() (storage.Driver, error) { return zfs.New(cfg) },
		cfg.DiskFile(), cfg.MountDir())
	if err := exec.Command("zpool", "list", pool).Run(); err == nil {
		t.Fatal("zpool still there after destroy")
	}
}

// A head that a restore replaced is retired: unmounted, its snapshot still
// readable, mounted again when asked for, and gone with its last snapshot.
func TestRetireHead(t *testing.T) {
	needZFS(t)
	ctx := context.Background()
	cfg := loopConfig("rt", t.TempDir(), 256<<20)
	d, err := zfs.New(cfg)
	d = storagetest.Ready(t, d, err)
	t.Cleanup(func() {
		if err := d.Destroy(ctx); err != nil {
			t.Errorf("destroy pool: %v", err)
		}
	})
	retirer, ok := d.(interface {
		RetireHead(context.Context, string) error
	})
	if !ok {
		t.Fatal("the zfs driver has no RetireHead")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(storage.CreateImageVolume(ctx, d, "img", func(root string) error {
		return os.WriteFile(filepath.Join(root, "f"), []byte("base\n"), 0o644)
	}))
	must(d.CloneVolume(ctx, storage.Ref{Volume: "img"}, "a"))
	root, err := d.VolumePath(ctx, "a")
	must(err)
	must(os.WriteFile(filepath.Join(root, "f"), []byte("head\n"), 0o644))
	snap := storage.Ref{Volume: "a", Snapshot: "s1"}
	must(d.CreateSnapshot(ctx, snap))

	must(retirer.RetireHead(ctx, "a"))
	if mounted, err := fsutil.IsMountPoint(root); err != nil || mounted {
		t.Fatalf("retired head still mounted (%v)", err)
	}
	must(retirer.RetireHead(ctx, "a")) // once more: nothing to do
	view, release, err := d.OpenSnapshot(ctx, snap)
	must(err)
	if b, err := os.ReadFile(filepath.Join(view, "f")); err != nil || string(b) != "head\n" {
		t.Fatalf("snapshot of a retired head: %q, %v", b, err)
	}
	must(release())
	again, err := d.VolumePath(ctx, "a")
	must(err)
	if b, err := os.ReadFile(filepath.Join(again, "f")); err != nil || string(b) != "head\n" {
		t.Fatalf("retired head mounted again: %q, %v", b, err)
	}

	must(retirer.RetireHead(ctx, "a"))
	must(d.DeleteVolume(ctx, "a"))
	must(d.DeleteSnapshot(ctx, snap))
	must(d.DeleteVolume(ctx, "img"))
	refs, err := d.List(ctx)
	must(err)
	if len(refs) != 0 {
		t.Fatalf("left behind: %v", refs)
	}
}
