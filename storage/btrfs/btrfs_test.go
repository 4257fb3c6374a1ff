package btrfs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/btrfs"
	"github.com/silo-dev/silo/storage/storagetest"
)

// needBtrfs skips only on a machine that truly cannot run btrfs tests.
func needBtrfs(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t, "btrfs tests mount a loop file")
	testutil.NeedCommand(t, "mkfs.btrfs")
}

func loopConfig(state string, size int64) storage.Config {
	return storage.Config{ID: "lp", Driver: "btrfs", Size: size, StateDir: state}
}

func TestConformance(t *testing.T) {
	needBtrfs(t)
	state := t.TempDir()
	d, err := btrfs.New(loopConfig(state, 2<<30))
	backing := storagetest.Ready(t, d, err)
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
		return storagetest.Ready(t, d, err)
	})
}

// A loop-backed pool comes back after its filesystem was unmounted, as
// after a reboot, and Destroy removes its loop file and mount.
func TestLoopPoolReattach(t *testing.T) {
	needBtrfs(t)
	state := t.TempDir()
	cfg := loopConfig(state, 256<<20)
	d, err := btrfs.New(cfg)
	mnt := cfg.MountDir()
	storagetest.Reattach(t, storagetest.Ready(t, d, err),
		func() error {
			if err := exec.Command("umount", mnt).Run(); err != nil {
				return err
			}
			if err := d.Ready(context.Background()); !errors.Is(err, errkind.Unavailable) {
				return fmt.Errorf("unmounted, the pool is ready: %v", err)
			}
			return nil
		},
		func() (storage.Driver, error) { return btrfs.New(cfg) },
		cfg.DiskFile(), mnt)
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
