// Command storagebench measures the storage figures silo promises: clone,
// snapshot and restore of an image-sized tree on btrfs and zfs, at one size
// and at ten times that size (they must not grow), and the dir driver's
// clone throughput against `cp -a` of the same tree in the same run.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-storage
// provides them). Pools live on loop files under a temporary state
// directory, removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/silo-dev/silo/copytree"
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
	check(err)
	defer os.RemoveAll(state)

	small := filepath.Join(state, "tree-small")
	check(makeTree(small, int64(*sizeMB)<<20))
	large := ""
	if *only != "dir" {
		large = filepath.Join(state, "tree-large")
		check(makeTree(large, int64(*sizeMB**scale)<<20))
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
		d, err := b.new(storage.Config{ID: fmt.Sprintf("bench%d", os.Getpid()), Driver: b.name, Size: poolSize, StateDir: state})
		check(err)
		check(d.Create(ctx))
		check(d.Mount(ctx))
		for _, tree := range []string{small, large} {
			measureCoW(ctx, b.name, d, tree)
		}
		check(d.Destroy(ctx))
	}
	if *only == "" || *only == "dir" {
		measureDir(ctx, state, small)
	}
}

// measureCoW times clone, snapshot and restore of a volume filled with tree.
func measureCoW(ctx context.Context, driver string, d storage.Driver, tree string) {
	check(storage.CreateImageVolume(ctx, d, "img", func(root string) error {
		return copyInto(ctx, tree, root)
	}))
	var clone, snap, restore []time.Duration
	head := "inst"
	check(d.CloneVolume(ctx, storage.Ref{Volume: "img"}, head))
	var snaps []storage.Ref
	for i := range *runs {
		id := fmt.Sprintf("c%d", i)
		clone = append(clone, timed(func() error { return d.CloneVolume(ctx, storage.Ref{Volume: "img"}, id) }))
		check(d.DeleteVolume(ctx, id))

		s := storage.Ref{Volume: head, Snapshot: fmt.Sprintf("s%d", i)}
		snap = append(snap, timed(func() error { return d.CreateSnapshot(ctx, s) }))
		snaps = append(snaps, s)

		// Restore to the oldest snapshot: the hardest case, newer ones are kept.
		next := fmt.Sprintf("inst%d", i)
		restore = append(restore, timed(func() error { return storage.Restore(ctx, d, head, snaps[0], next) }))
		head = next
	}
	for _, s := range snaps {
		check(d.DeleteSnapshot(ctx, s))
	}
	check(d.DeleteVolume(ctx, head))
	check(d.DeleteVolume(ctx, "img"))
	mb := treeMB(tree)
	fmt.Printf("%-5s %5d MB tree: clone %s  snapshot %s  restore %s\n", driver, mb, stat(clone), stat(snap), stat(restore))
}

// measureDir compares the dir driver's clone with cp -a, alternating runs.
func measureDir(ctx context.Context, state, tree string) {
	d, err := dir.New(storage.Config{ID: "dirbench", Driver: "dir", StateDir: state})
	check(err)
	check(d.Create(ctx))
	check(storage.CreateImageVolume(ctx, d, "img", func(root string) error { return copyInto(ctx, tree, root) }))
	src, err := d.VolumePath(ctx, "img")
	check(err)
	var silo, cp []time.Duration
	n := min(*runs, 5)
	for i := range n {
		silo = append(silo, timed(func() error { return d.CloneVolume(ctx, storage.Ref{Volume: "img"}, "c") }))
		check(d.DeleteVolume(ctx, "c"))
		dst := filepath.Join(state, fmt.Sprintf("cp%d", i))
		cp = append(cp, timed(func() error { return exec.Command("cp", "-a", src, dst).Run() }))
		check(os.RemoveAll(dst))
	}
	check(d.DeleteVolume(ctx, "img"))
	check(d.Destroy(ctx))
	mb := float64(treeMB(tree))
	rate := func(ds []time.Duration) float64 { return mb / median(ds).Seconds() }
	fmt.Printf("dir   %5.0f MB tree: clone %.0f MB/s (%s), cp -a %.0f MB/s (%s): %.2fx\n",
		mb, rate(silo), stat(silo), rate(cp), stat(cp), rate(silo)/rate(cp))
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

// makeTree writes a tree shaped like a root filesystem: many small files
// and a few large ones, in nested directories.
func makeTree(root string, total int64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	var written int64
	for i := 0; written < total; i++ {
		dir := filepath.Join(root, fmt.Sprintf("usr/lib/d%03d/s%02d", i/400, i%40))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		size := int64(rng.ExpFloat64() * 20000)
		if i%500 == 0 {
			size = 2 << 20
		}
		size = min(size, int64(len(buf)), total-written)
		off := rng.IntN(len(buf) - int(size) + 1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), buf[off:off+int(size)], 0o644); err != nil {
			return err
		}
		written += size
	}
	return nil
}

func treeMB(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n >> 20
}

func timed(fn func() error) time.Duration {
	start := time.Now()
	check(fn())
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func stat(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("%s ms [%s-%s]", ms(median(s)), ms(s[0]), ms(s[len(s)-1]))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
