// Command refreshbench measures "silo copy --refresh" with whole
// commands, on the Debian bookworm minbase image with systemd
// (hack/debian-image.sh), on btrfs and zfs loop pools and a dir pool:
// after a 1 MB change in the source, the time of the refresh and the
// bytes it says it moved, for a copy that shares a snapshot with its
// source and for one that shares none (--instance-only), whose trees are
// compared file by file.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-refresh
// provides them).
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs    = flag.Int("runs", 5, "timed runs per figure")
	drivers = flag.String("drivers", "btrfs,zfs,dir", "drivers to measure, comma-separated")
)

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "refreshbench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	s := benchutil.NewSilo(benchutil.BuildSilo(work), filepath.Join(work, "state"))
	defer s.Close()
	benchutil.Check(s.Run("image", "import", benchutil.DebianImage(), "--alias", "debian"))
	change := filepath.Join(work, "change")
	fmt.Printf("Debian bookworm minbase with systemd; copy --refresh after a 1 MB change; %d runs, medians [min-max]\n", *runs)
	for _, driver := range strings.Split(*drivers, ",") {
		pool := "p-" + driver
		args := []string{"pool", "create", pool, "--driver", driver}
		if driver != "dir" {
			args = append(args, "--size", "4GiB")
		}
		benchutil.Check(s.Run(args...))
		src := "src-" + driver
		// zfs-fuse drops the image's extended attributes, and says so.
		benchutil.Check(s.RunLenient("create", "debian", src, "--pool", pool))
		benchutil.Check(s.Run("snapshot", "create", src, "base"))
		benchutil.Check(s.Run("copy", src, "shared-"+driver))
		benchutil.Check(s.Run("copy", src, "alone-"+driver, "--instance-only"))
		var info api.Instance
		benchutil.Check(s.JSON(&info, "info", src))
		fmt.Printf("%s: the instance takes %d MB on disk\n", driver, info.State.Disk[api.RootDevice].Usage/1e6)
		for _, dst := range []string{"shared-" + driver, "alone-" + driver} {
			var times []time.Duration
			var moved []int64
			for i := range *runs {
				b := make([]byte, 1<<20)
				rand.Read(b)
				benchutil.Check(os.WriteFile(change, b, 0o644))
				benchutil.Check(s.Run("file", "push", change, fmt.Sprintf("%s/root/change%d", src, i)))
				var n int64
				times = append(times, benchutil.Timed(func() (err error) {
					n, err = refresh(s, src, dst)
					return err
				}))
				moved = append(moved, n)
			}
			fmt.Printf("  %-14s %s, bytes moved %v\n", dst, benchutil.Stat(times), moved)
		}
		for _, n := range []string{src, "shared-" + driver, "alone-" + driver} {
			benchutil.Check(s.Run("delete", n))
		}
		benchutil.Check(s.Run("pool", "delete", pool))
	}
}

// refresh runs copy --refresh and returns the bytes it says it moved.
func refresh(s *benchutil.Silo, src, dst string) (int64, error) {
	cmd := s.Command("copy", src, dst, "--refresh")
	cmd.Stderr = os.Stderr
	out, err := s.NS.Output(cmd)
	if err != nil {
		return 0, fmt.Errorf("copy --refresh: %w", err)
	}
	var a, b string
	var added, replaced int
	var n int64
	if _, err := fmt.Sscanf(string(out), "Instance %s refreshed from %s %d snapshots added, %d replaced, %d bytes moved", &a, &b, &added, &replaced, &n); err != nil {
		return 0, fmt.Errorf("copy --refresh said %q: %w", out, err)
	}
	return n, nil
}
