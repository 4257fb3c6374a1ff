// Command storagebench measures the storage figures silo promises: clone,
// snapshot and restore of an image-sized tree on btrfs and zfs, at one size
// and at ten times that size (they must not grow), beside the bare zfs
// commands on the same trees, and the dir driver's clone throughput against
// `cp -a` of the same tree in the same run.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-storage
// provides them). Pools live on loop files under a temporary state
// directory, removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
	"github.com/silo-dev/silo/internal/copytree"
	"github.com/silo-dev/silo/storage"
	"github.com/silo-dev/silo/storage/btrfs"
	"github.com/silo-dev/silo/storage/dir"
	"github.com/silo-dev/silo/storage/zfs"
)

var (
	sizeMB = flag.Int("size", 250, "size of the base tree in MB")
	scale  = flag.Int("scale", 10, "the larger tree is this many times the base tree")
	runs   = flag.Int("runs", 11, "timed runs per figure")
	only   = flag.String("only", "", "run only this driver (btrfs, zfs or dir)")
)

func main() {
	flag.Parse()
	ctx := context.Background()
	state, err := os.MkdirTemp("/var/tmp", "storagebench-")
	benchutil.Check(err)
	defer os.RemoveAll(state)

	small := filepath.Join(state, "tree-small")
	benchutil.Check(benchutil.MakeTree(small, int64(*sizeMB)<<20))
	large := ""
	if *only != "dir" {
		large = filepath.Join(state, "tree-large")
		benchutil.Check(benchutil.MakeTree(large, int64(*sizeMB**scale)<<20))
	}
	fmt.Printf("trees: %d MB and %d MB; %d runs per figure; medians [min-max]\n\n", *sizeMB, *sizeMB**scale, *runs)

	poolSize := int64(*sizeMB)*int64(*scale+2)<<20 + 1<<30
	for _, b := range []struct {
		name string
		new  func(storage.Config) (storage.Driver, error)
	}{{"btrfs", btrfs.New}, {"zfs", zfs.New}} {
		if *only != "" && *only != b.name {
			continue
		}
		cfg := storage.Config{ID: fmt.Sprintf("bench%d", os.Getpid()), Driver: b.name, Size: poolSize, StateDir: state}
		d, err := b.new(cfg)
		benchutil.Check(err)
		benchutil.Check(d.Create(ctx))
		benchutil.Check(d.Mount(ctx))
		for _, tree := range []string{small, large} {
			measureCoW(ctx, b.name, d, tree, "silo-"+cfg.ID)
		}
		benchutil.Check(d.Destroy(ctx))
	}
	if *only == "" || *only == "dir" {
		measureDir(ctx, state, small)
	}
}

// measureCoW times clone, snapshot and restore of a volume filled with tree,
// and on zfs (in zpool), run by run, the bare zfs commands that clone and
// snapshot run.
func measureCoW(ctx context.Context, driver string, d storage.Driver, tree, zpool string) {
	benchutil.Check(storage.CreateImageVolume(ctx, d, "img", func(root string) error {
		return copyInto(ctx, tree, root)
	}))
	var clone, snap, restore []time.Duration
	head := "inst"
	benchutil.Check(d.CloneVolume(ctx, storage.Ref{Volume: "img"}, head))
	var snaps []storage.Ref
	var heads []string // earlier heads, deleted or retired
	var floor *benchutil.ZFSFloor
	if driver == "zfs" {
		floor = benchutil.NewZFSFloor(zpool)
	}
	for i := range *runs {
		id := fmt.Sprintf("c%d", i)
		clone = append(clone, benchutil.Timed(func() error { return d.CloneVolume(ctx, storage.Ref{Volume: "img"}, id) }))
		benchutil.Check(d.DeleteVolume(ctx, id))
		if floor != nil {
			floor.Run()
		}

		s := storage.Ref{Volume: head, Snapshot: fmt.Sprintf("s%d", i)}
		snap = append(snap, benchutil.Timed(func() error { return d.CreateSnapshot(ctx, s) }))
		snaps = append(snaps, s)

		// Restore to the oldest snapshot: the hardest case, newer ones are kept.
		next := fmt.Sprintf("inst%d", i)
		restore = append(restore, benchutil.Timed(func() error { return restoreAsSilo(ctx, d, head, snaps[0], next) }))
		heads = append(heads, head)
		head = next
	}
	for _, s := range snaps {
		benchutil.Check(d.DeleteSnapshot(ctx, s))
	}
	for _, h := range append(heads, head) {
		benchutil.Check(d.DeleteVolume(ctx, h))
	}
	mb := benchutil.TreeMB(tree)
	fmt.Printf("%-5s %5d MB tree: clone %s  snapshot %s  restore %s\n", driver, mb, benchutil.Stat(clone), benchutil.Stat(snap), benchutil.Stat(restore))
	if floor != nil {
		fmt.Printf("      %5d MB tree, %s\n", mb, floor)
	}
	benchutil.Check(d.DeleteVolume(ctx, "img"))
}

// restoreAsSilo does the storage work of `silo snapshot restore`: it clones
// the snapshot into a new head, and a driver that can retire the old head
// (zfs) unmounts it; the head is deleted later, not by the restore.
func restoreAsSilo(ctx context.Context, d storage.Driver, head string, snap storage.Ref, next string) error {
	if err := d.CloneVolume(ctx, snap, next); err != nil {
		return err
	}
	if r, ok := d.(interface {
		RetireHead(context.Context, string) error
	}); ok {
		return r.RetireHead(ctx, head)
	}
	return nil
}

// measureDir compares the dir driver's clone with cp -a, alternating runs.
func measureDir(ctx context.Context, state, tree string) {
	d, err := dir.New(storage.Config{ID: "dirbench", Driver: "dir", StateDir: state})
	benchutil.Check(err)
	benchutil.Check(d.Create(ctx))
	benchutil.Check(storage.CreateImageVolume(ctx, d, "img", func(root string) error { return copyInto(ctx, tree, root) }))
	src, err := d.VolumePath(ctx, "img")
	benchutil.Check(err)
	var silo, cp []time.Duration
	n := min(*runs, 5)
	for i := range n {
		silo = append(silo, benchutil.Timed(func() error { return d.CloneVolume(ctx, storage.Ref{Volume: "img"}, "c") }))
		benchutil.Check(d.DeleteVolume(ctx, "c"))
		dst := filepath.Join(state, fmt.Sprintf("cp%d", i))
		cp = append(cp, benchutil.Timed(func() error { return exec.Command("cp", "-a", src, dst).Run() }))
		benchutil.Check(os.RemoveAll(dst))
	}
	benchutil.Check(d.DeleteVolume(ctx, "img"))
	benchutil.Check(d.Destroy(ctx))
	mb := float64(benchutil.TreeMB(tree))
	rate := func(ds []time.Duration) float64 { return mb / benchutil.Median(ds).Seconds() }
	fmt.Printf("dir   %5.0f MB tree: clone %.0f MB/s (%s), cp -a %.0f MB/s (%s): %.2fx\n",
		mb, rate(silo), benchutil.Stat(silo), rate(cp), benchutil.Stat(cp), rate(silo)/rate(cp))
}

// copyInto copies the tree's content into an existing volume root.
func copyInto(ctx context.Context, tree, root string) error {
	entries, err := os.ReadDir(tree)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copytree.Copy(ctx, filepath.Join(tree, e.Name()), filepath.Join(root, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
