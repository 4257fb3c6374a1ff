package zfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
