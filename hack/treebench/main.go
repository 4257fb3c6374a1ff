// Command treebench shows that an unprivileged instance costs the same
// whatever its tree holds: it times create and start (to first exec) of
// default instances, which reach runc through an idmapped mount of their
// volume, on busybox images padded to -small and -large MB, on a btrfs
// loop pool. A walk over the tree (a chown, as a runtime without idmapped
// mounts would do) would make the large figures ten times the small ones.
//
// It needs root, runc and btrfs-progs (make bench-tree provides them).
// Everything lives under a temporary state directory, removed at the end.
package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs  = flag.Int("runs", 7, "timed runs per figure")
	small = flag.Int("small", 250, "the small image's padding, in MB")
	large = flag.Int("large", 2500, "the large image's padding, in MB")
)

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "treebench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	silo := benchutil.NewSilo(benchutil.BuildSilo(work), filepath.Join(work, "state"))
	defer silo.Close()
	run := silo.Run
	busybox := benchutil.BusyboxImage()
	benchutil.Check(run("pool", "create", "bench", "--driver", "btrfs", "--size", fmt.Sprintf("%dMiB", *large*2+2048)))
	defer run("pool", "delete", "bench")

	fmt.Printf("unprivileged busybox on btrfs, padded; %d runs per figure; medians [min-max]\n", *runs)
	for _, mb := range []int{*small, *large} {
		alias := fmt.Sprintf("padded%d", mb)
		img := filepath.Join(work, alias+".tar")
		benchutil.Check(paddedImage(busybox, img, filepath.Join(work, "pad"), int64(mb)<<20))
		benchutil.Check(run("image", "import", img, "--alias", alias))
		os.Remove(img)
		// The first create puts the image on the pool; it is not timed.
		benchutil.Check(run("create", alias, "first", "--pool", "bench"))
		benchutil.Check(run("delete", "first"))
		var create, start []time.Duration
		for i := range *runs {
			name := fmt.Sprintf("t%d", i)
			create = append(create, benchutil.Timed(func() error { return run("create", alias, name, "--pool", "bench") }))
			start = append(start, benchutil.Timed(func() error {
				if err := run("start", name); err != nil {
					return err
				}
				return run("exec", name, "--", "true")
			}))
			benchutil.Check(run("delete", "--force", name))
		}
		fmt.Printf("%5d MB tree: create %s  start to first exec %s\n", mb, benchutil.Stat(create), benchutil.Stat(start))
		benchutil.Check(run("image", "delete", alias))
	}
}

// paddedImage writes, at out, the busybox image's root filesystem with a
// tree of size bytes beside it under /usr/lib/padding.
func paddedImage(busybox, out, pad string, size int64) error {
	defer os.RemoveAll(pad)
	if err := benchutil.MakeTree(pad, size); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := copyTar(busybox, tw); err != nil {
		return err
	}
	if err := benchutil.AddTree(tw, pad, "usr/lib/padding"); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// copyTar copies the entries of the gzipped tarball at path into tw.
func copyTar(path string, tw *tar.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
