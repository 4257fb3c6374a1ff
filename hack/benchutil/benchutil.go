// Package benchutil holds what silo's benchmark commands share: a tree
// shaped like a root filesystem to measure on, and medians of timings.
package benchutil

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// Waves runs launch(i) for i from 0 to total-1, wave of them at once and
// one wave after another, until all succeed or a wave has a failure. It
// returns how many the waves that fully succeeded launched, and the
// failures.
func Waves(total, wave int, launch func(i int) error) (int, error) {
	wave = max(wave, 1)
	done := 0
	for done < total {
		n := min(wave, total-done)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() { errs[k] = launch(done + k) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// MemAvailable is the host's available memory, as /proc/meminfo says.
func MemAvailable() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// Check stops the benchmark on an error, after undoing what must not
// outlive it.
func Check(err error) {
	if err != nil {
		failing.Do(func() {
			failureMu.Lock()
			defer failureMu.Unlock()
			for _, fn := range slices.Backward(onFailure) {
				fn()
			}
		})
		log.Fatal(err)
	}
}

var (
	failureMu sync.Mutex
	onFailure []func()
	failing   sync.Once
)

// atFailure has Check run fn before it stops the benchmark: network
// namespaces, whose dnsmasq would keep running.
func atFailure(fn func()) {
	failureMu.Lock()
	defer failureMu.Unlock()
	onFailure = append(onFailure, fn)
}

// TarTree writes the tree at root as a plain tar at out: an image to
// import.
func TarTree(root, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = AddTree(tw, root, "")
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
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
