package btrfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/btrfs"
	"github.com/silo-dev/silo/storage/storagetest"
)

// needBtrfs skips only on a machine that truly cannot run btrfs tests.
func needBtrfs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("btrfs tests need root to mount a loop file")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs is not installed (hack/install-deps.sh installs it)")
	}
}

// loopPool makes a loop-backed btrfs pool the way users do, with a size.
func loopPool(t *testing.T, state string, size int64) storage.Driver {
	t.Helper()
	d, err := btrfs.New(storage.Config{ID: "lp", Driver: "btrfs", Size: size, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	needBtrfs(t)
	state := t.TempDir()
	backing := loopPool(t, state, 2<<30)
	t.Cleanup(func() {
		if err := backing.Destroy(context.Background()); err != nil {
			t.Errorf("destroy backing pool: %v", err)
		}
	})
	// Every pool of the suite is a directory of the one loop-backed btrfs.
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		src := filepath.Join(state, "pools", "lp", fmt.Sprintf("suite%d", n.Add(1)))
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(src) })
		d, err := btrfs.New(storage.Config{ID: "p", Driver: "btrfs", Source: src})
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

// A loop-backed pool comes back after its filesystem was unmounted, as
// after a reboot, and Destroy removes its loop file.
func TestLoopPoolReattach(t *testing.T) {
	needBtrfs(t)
	ctx := context.Background()
	state := t.TempDir()
	d := loopPool(t, state, 256<<20)
	root, err := d.CreateVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(state, "pools", "lp")
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	again, err := btrfs.New(storage.Config{ID: "lp", Driver: "btrfs", Size: 256 << 20, StateDir: state})
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
	if _, err := os.Stat(filepath.Join(state, "disks", "lp.img")); !os.IsNotExist(err) {
		t.Fatalf("loop file left behind: %v", err)
	}
	if m, _ := fsutil.IsMountPoint(mnt); m {
		t.Fatal("pool still mounted after destroy")
	}
}

func TestSourceMustBeBtrfs(t *testing.T) {
	needBtrfs(t)
	d, err := btrfs.New(storage.Config{ID: "p", Driver: "btrfs", Source: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background()); err == nil {
		t.Fatal("a pool was made on a directory that is not btrfs")
	}
}
