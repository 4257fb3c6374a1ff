// Package benchutil holds what silo's benchmark commands share: a tree
// shaped like a root filesystem to measure on, and medians of timings.
package benchutil

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// MakeTree writes a tree shaped like a root filesystem: many small files
// and a few large ones, in nested directories.
func MakeTree(root string, total int64) error {
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

// TreeMB is the size of the regular files below root, in MB.
func TreeMB(root string) int64 {
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

// Timed runs fn, which must succeed, and returns how long it took.
func Timed(fn func() error) time.Duration {
	start := time.Now()
	Check(fn())
	return time.Since(start)
}

// Median of ds.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Stat prints the median of ds and its range.
func Stat(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("%s ms [%s-%s]", ms(Median(s)), ms(s[0]), ms(s[len(s)-1]))
}

// Check stops the benchmark on an error.
func Check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// AddTree writes the tree at root into tw, its names under prefix.
func AddTree(tw *tar.Writer, root, prefix string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		hdr.Name = filepath.Join(prefix, rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
}
