package zfs_test

import (
	"context"
	"errors"
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

// smallPool makes a file-backed pool of 256 MiB for one test, destroyed
// when it ends.
func smallPool(t *testing.T, id string) (storage.Driver, storage.Config) {
	needZFS(t)
	cfg := loopConfig(id, t.TempDir(), 256<<20)
	d, err := zfs.New(cfg)
	d = storagetest.Ready(t, d, err)
	t.Cleanup(func() {
		if err := d.Destroy(context.Background()); err != nil {
			t.Errorf("destroy pool: %v", err)
		}
	})
	return d, cfg
}

// A head that a restore replaced is retired: unmounted, its snapshot still
// readable, mounted again when asked for, and gone with its last snapshot.
func TestRetireHead(t *testing.T) {
	ctx := context.Background()
	d, _ := smallPool(t, "rt")
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

// Fork makes a volume that takes over another's snapshots up to one, and
// takes incremental streams made against that one while the other keeps
// its head and newer snapshots; Unfork gives the snapshots back, once
// only. A volume that a receive cut short left with its snapshot of the
// head is deleted whole, and a mount sweeps the snapshot a killed send took.
func TestFork(t *testing.T) {
	ctx := context.Background()
	d, cfg := smallPool(t, "fk")
	fk, ok := d.(interface {
		StreamID(context.Context, storage.Ref) (string, error)
		Fork(context.Context, storage.Ref, string) ([]string, error)
		Unfork(context.Context, string, string) error
	})
	if !ok {
		t.Fatal("the zfs driver cannot fork")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(vol, s string) {
		t.Helper()
		root, err := d.VolumePath(ctx, vol)
		must(err)
		must(os.WriteFile(filepath.Join(root, "f"), []byte(s), 0o644))
	}
	read := func(ref storage.Ref) string {
		t.Helper()
		root, release := "", func() error { return nil }
		var err error
		if ref.Snapshot != "" {
			root, release, err = d.OpenSnapshot(ctx, ref)
		} else {
			root, err = d.VolumePath(ctx, ref.Volume)
		}
		must(err)
		defer release()
		b, err := os.ReadFile(filepath.Join(root, "f"))
		must(err)
		return string(b)
	}
	pipe := func(src storage.Ref, parent string, dst storage.Ref, onto string) {
		t.Helper()
		r, w, err := os.Pipe()
		must(err)
		done := make(chan error, 1)
		go func() { done <- d.Send(ctx, src, parent, w); w.Close() }()
		err = d.Receive(ctx, dst, onto, r)
		r.Close()
		must(errors.Join(err, <-done))
	}

	// a, the copy: s1, received from b's, then its own s2 and head.
	_, err := d.CreateVolume(ctx, "b")
	must(err)
	write("b", "one")
	must(d.CreateSnapshot(ctx, storage.Ref{Volume: "b", Snapshot: "s1"}))
	pipe(storage.Ref{Volume: "b", Snapshot: "s1"}, "", storage.Ref{Volume: "a", Snapshot: "s1"}, "")
	write("a", "own")
	must(d.CreateSnapshot(ctx, storage.Ref{Volume: "a", Snapshot: "s2"}))
	write("a", "a's head")
	write("b", "b's head")
	want, err := fk.StreamID(ctx, storage.Ref{Volume: "b", Snapshot: "s1"})
	must(err)
	if got, err := fk.StreamID(ctx, storage.Ref{Volume: "a", Snapshot: "s1"}); err != nil || got != want {
		t.Fatalf("a's s1 has stream ID %q (%v), b's %q", got, err, want)
	}

	moved, err := fk.Fork(ctx, storage.Ref{Volume: "a", Snapshot: "s1"}, "n")
	must(err)
	if fmt.Sprint(moved) != "[s1]" {
		t.Fatalf("the fork took %v, want [s1]", moved)
	}
	pipe(storage.Ref{Volume: "b"}, "s1", storage.Ref{Volume: "n"}, "s1")
	for ref, want := range map[storage.Ref]string{
		{Volume: "n"}: "b's head", {Volume: "n", Snapshot: "s1"}: "one",
		{Volume: "a"}: "a's head", {Volume: "a", Snapshot: "s2"}: "own",
	} {
		if got := read(ref); got != want {
			t.Fatalf("after the fork and receive, %s holds %q, want %q", ref, got, want)
		}
	}

	must(fk.Unfork(ctx, "n", "a"))
	must(fk.Unfork(ctx, "n", "a")) // once more: nothing to do
	if got := read(storage.Ref{Volume: "a", Snapshot: "s1"}); got != "one" {
		t.Fatalf("a's s1 given back holds %q", got)
	}
	// As a receive cut short leaves it.
	if out, err := exec.Command("zfs", "snapshot", "silo-"+cfg.ID+"/volumes/n@_recv").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	must(d.DeleteVolume(ctx, "n"))
	if out, err := exec.Command("zfs", "list", "silo-"+cfg.ID+"/volumes/n").CombinedOutput(); err == nil {
		t.Fatalf("n is still there: %s", out)
	}
	// As a send killed leaves it: the next mount of the pool sweeps it.
	sent := "silo-" + cfg.ID + "/volumes/b@_send-x"
	if out, err := exec.Command("zfs", "snapshot", sent).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	must(d.Mount(ctx))
	if out, err := exec.Command("zfs", "list", sent).CombinedOutput(); err == nil {
		t.Fatalf("%s is still there after a mount: %s", sent, out)
	}
	for ref, want := range map[storage.Ref]string{{Volume: "a"}: "a's head", {Volume: "a", Snapshot: "s2"}: "own"} {
		if got := read(ref); got != want {
			t.Fatalf("after the unfork, %s holds %q, want %q", ref, got, want)
		}
	}
	for _, ref := range []storage.Ref{{Volume: "a", Snapshot: "s2"}, {Volume: "a", Snapshot: "s1"}, {Volume: "b", Snapshot: "s1"}} {
		must(d.DeleteSnapshot(ctx, ref))
	}
	must(d.DeleteVolume(ctx, "a"))
	must(d.DeleteVolume(ctx, "b"))
}
