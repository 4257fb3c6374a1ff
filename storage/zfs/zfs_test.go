package zfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/storagetest"
	"github.com/silo-dev/silo/storage/zfs"
)

// needZFS skips only where ZFS cannot run at all. With the tools installed
// but no kernel module or zfs-fuse daemon answering, it fails: that is a
// broken set-up, not a missing part (.ci/run starts zfs-fuse).
func needZFS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("zfs tests need root")
	}
	if _, err := exec.LookPath("zpool"); err != nil {
		t.Skip("zfs is not installed (hack/install-deps.sh installs zfs-fuse)")
	}
	if out, err := exec.Command("zpool", "list").CombinedOutput(); err != nil {
		t.Fatalf("zfs does not answer (start the zfs-fuse daemon, or load the zfs module): %s", out)
	}
}

func loopPool(t *testing.T, id, state string, size int64) storage.Driver {
	t.Helper()
	d, err := zfs.New(storage.Config{ID: id, Driver: "zfs", Size: size, StateDir: state})
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
	needZFS(t)
	state := t.TempDir()
	id := fmt.Sprintf("test%d", os.Getpid())
	backing := loopPool(t, id, state, 2<<30)
	t.Cleanup(func() {
		if err := backing.Destroy(context.Background()); err != nil {
			t.Errorf("destroy backing pool: %v", err)
		}
	})
	// Every pool of the suite is a dataset of the one file-backed zpool.
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		i := n.Add(1)
		src := fmt.Sprintf("silo-%s/suite%d", id, i)
		if out, err := exec.Command("zfs", "create", "-o", "mountpoint=none", src).CombinedOutput(); err != nil {
			t.Fatalf("create %s: %v %s", src, err, out)
		}
		t.Cleanup(func() { exec.Command("zfs", "destroy", src).Run() })
		d, err := zfs.New(storage.Config{ID: fmt.Sprintf("p%d", i), Driver: "zfs", Source: src, StateDir: state})
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
	})
}

// A file-backed zpool comes back after an export, as after a reboot, and
// Destroy removes its file.
func TestLoopPoolReattach(t *testing.T) {
	needZFS(t)
	ctx := context.Background()
	state := t.TempDir()
	id := fmt.Sprintf("re%d", os.Getpid())
	d := loopPool(t, id, state, 256<<20)
	root, err := d.CreateVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("zpool", "export", "silo-"+id).CombinedOutput(); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	again, err := zfs.New(storage.Config{ID: id, Driver: "zfs", Size: 256 << 20, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Mount(ctx); err != nil {
		t.Fatalf("reattach: %v", err)
	}
	p, err := again.VolumePath(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "f")); err != nil || string(b) != "kept" {
		t.Fatalf("after reattach: %q %v", b, err)
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
	if _, err := os.Stat(filepath.Join(state, "disks", id+".img")); !os.IsNotExist(err) {
		t.Fatalf("pool file left behind: %v", err)
	}
	if err := exec.Command("zpool", "list", "silo-"+id).Run(); err == nil {
		t.Fatal("zpool still there after destroy")
	}
}
