package btrfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// An incremental stream lands in a new volume, on another pool, onto the
// received copy of its parent, which StreamID tells by the UUID it was
// received from; the volumes it started from stay as they were.
func TestReceiveOnto(t *testing.T) {
	needBtrfs(t)
	ctx := context.Background()
	state := t.TempDir()
	type refresher interface {
		StreamID(ctx context.Context, snap storage.Ref) (string, error)
		ReceiveOnto(ctx context.Context, dst, base storage.Ref, r io.Reader) error
	}
	var pools [2]storage.Driver
	for i := range pools {
		d, err := btrfs.New(storage.Config{ID: fmt.Sprintf("p%d", i), Driver: "btrfs", Size: 256 << 20, StateDir: state})
		pools[i] = storagetest.Ready(t, d, err)
		t.Cleanup(func() { empty(t, pools[i]) })
	}
	src, dst := pools[0], pools[1]
	root, err := src.CreateVolume(ctx, "a")
	check(t, err)
	check(t, os.WriteFile(filepath.Join(root, "big"), make([]byte, 4<<20), 0o644))
	check(t, src.CreateSnapshot(ctx, storage.Ref{Volume: "a", Snapshot: "s1"}))
	var full bytes.Buffer
	check(t, src.Send(ctx, storage.Ref{Volume: "a", Snapshot: "s1"}, "", &full))
	check(t, dst.Receive(ctx, storage.Ref{Volume: "b", Snapshot: "s1"}, "", &full))
	id := func(d storage.Driver, ref storage.Ref) string {
		s, err := d.(refresher).StreamID(ctx, ref)
		check(t, err)
		return s
	}
	if a, b := id(src, storage.Ref{Volume: "a", Snapshot: "s1"}), id(dst, storage.Ref{Volume: "b", Snapshot: "s1"}); a != b || a == "" {
		t.Fatalf("stream IDs %q on the source, %q on its received copy", a, b)
	}

	check(t, os.WriteFile(filepath.Join(root, "small"), []byte("changed"), 0o644))
	check(t, src.CreateSnapshot(ctx, storage.Ref{Volume: "a", Snapshot: "s2"}))
	var inc bytes.Buffer
	check(t, src.Send(ctx, storage.Ref{Volume: "a", Snapshot: "s2"}, "s1", &inc))
	if inc.Len() > 64<<10 {
		t.Fatalf("an incremental stream of 7 bytes of changes holds %d bytes", inc.Len())
	}
	base := storage.Ref{Volume: "b", Snapshot: "s1"}
	onto := dst.(refresher).ReceiveOnto
	if err := onto(ctx, storage.Ref{Volume: "b", Snapshot: "s2"}, base, bytes.NewReader(inc.Bytes())); !errors.Is(err, errkind.AlreadyExists) {
		t.Fatalf("a stream received onto an existing volume: %v", err)
	}
	check(t, onto(ctx, storage.Ref{Volume: "c", Snapshot: "s2"}, base, &inc))
	for _, ref := range []storage.Ref{{Volume: "c"}, {Volume: "c", Snapshot: "s2"}} {
		p, release, err := openRef(ctx, dst, ref)
		check(t, err)
		if b, err := os.ReadFile(filepath.Join(p, "small")); err != nil || string(b) != "changed" {
			t.Fatalf("%s: small holds %q (%v)", ref, b, err)
		}
		check(t, release())
	}
	broot, err := dst.VolumePath(ctx, "b")
	check(t, err)
	if _, err := os.Stat(filepath.Join(broot, "small")); !os.IsNotExist(err) {
		t.Fatalf("the volume received onto changed: %v", err)
	}
}

func openRef(ctx context.Context, d storage.Driver, ref storage.Ref) (string, func() error, error) {
	if ref.Snapshot != "" {
		return d.OpenSnapshot(ctx, ref)
	}
	p, err := d.VolumePath(ctx, ref.Volume)
	return p, func() error { return nil }, err
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// empty deletes every volume and snapshot of pool d, then d itself.
func empty(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	refs, err := d.List(ctx)
	check(t, err)
	for _, ref := range refs {
		if ref.Snapshot != "" {
			check(t, d.DeleteSnapshot(ctx, ref))
		}
	}
	for _, ref := range refs {
		if ref.Snapshot == "" {
			check(t, d.DeleteVolume(ctx, ref.Volume))
		}
	}
	check(t, d.Destroy(ctx))
}
