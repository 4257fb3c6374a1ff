// Command refreshbench measures "silo copy --refresh" with whole
// commands, on the Debian bookworm minbase image with systemd
// (hack/debian-image.sh), on btrfs and zfs loop pools and a dir pool:
// the time of the refresh and the bytes it says it moved, when the source
// changed by 1 MB since the newest snapshot it shares with the copy.
// The copy is made with a snapshot of the source. Each run first
// snapshots the source and refreshes the copy (untimed), then writes 1 MB
// into the source and times the refresh.
//
// With -to, the copy is on a second pool, of that driver.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-refresh
// provides them).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs    = flag.Int("runs", 5, "timed runs per figure")
	drivers = flag.String("drivers", "btrfs,zfs,dir", "drivers to measure, comma-separated")
	to      = flag.String("to", "", "make the copy on a second pool of this driver, rather than on the source's")
)

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "refreshbench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	s := benchutil.NewSilo(benchutil.BuildSilo(work), filepath.Join(work, "state"))
	defer s.Close()
	benchutil.Check(s.Run("image", "import", benchutil.DebianImage(), "--alias", "debian"))
	fmt.Printf("Debian bookworm minbase with systemd; copy --refresh after a 1 MB change; %d runs, medians [min-max]\n", *runs)
	for _, driver := range strings.Split(*drivers, ",") {
		pool := createPool(s, "p-", driver)
		dstPool, name := pool, driver
		if *to != "" {
			dstPool, name = createPool(s, "q-", *to), driver+">"+*to
		}
		src := "src-" + driver
		// zfs-fuse drops the image's extended attributes, and says so.
		benchutil.Check(s.RunLenient("create", "debian", src, "--pool", pool))
		// A copy with a snapshot, as a user who means to refresh it makes:
		// on btrfs and zfs its snapshot is a received one, which the
		// streams of later refreshes start from.
		dst := "copy-" + driver
		benchutil.Check(s.Run("snapshot", "create", src))
		benchutil.Check(s.Run("copy", src, dst, "--pool", dstPool))
		var times []time.Duration
		var moved []int64
		var by string
		for i := range *runs {
			benchutil.Check(s.Run("snapshot", "create", src))
			_, _, err := refresh(s, src, dst)
			benchutil.Check(err)
			benchutil.Check(s.Change(src, fmt.Sprintf("/root/change%d", i), 1<<20))
			var n int64
			times = append(times, benchutil.Timed(func() (err error) {
				n, by, err = refresh(s, src, dst)
				return err
			}))
			moved = append(moved, n)
		}
		fmt.Printf("%-6s %s, bytes moved %v, by %s\n", name, benchutil.Stat(times), moved, by)
		for _, n := range []string{src, dst} {
			benchutil.Check(s.Run("delete", n))
		}
		for _, p := range slices.Compact([]string{pool, dstPool}) {
			benchutil.Check(s.Run("pool", "delete", p))
		}
	}
}

// createPool makes a pool of driver called prefix+driver, and returns its name.
func createPool(s *benchutil.Silo, prefix, driver string) string {
	pool := prefix + driver
	args := []string{"pool", "create", pool, "--driver", driver}
	if driver != "dir" {
		args = append(args, "--size", "4GiB")
	}
	benchutil.Check(s.Run(args...))
	return pool
}

// refresh runs copy --refresh and returns the bytes it says it moved,
// and what moved them.
func refresh(s *benchutil.Silo, src, dst string) (int64, string, error) {
	cmd := s.Command("copy", src, dst, "--refresh")
	cmd.Stderr = os.Stderr
	out, err := s.NS.Output(cmd)
	if err != nil {
		return 0, "", fmt.Errorf("copy --refresh: %w", err)
	}
	var a, b string
	var added, replaced int
	var n int64
	if _, err := fmt.Sscanf(string(out), "Instance %s refreshed from %s %d snapshots added, %d replaced, %d bytes moved by ", &a, &b, &added, &replaced, &n); err != nil {
		return 0, "", fmt.Errorf("copy --refresh said %q: %w", out, err)
	}
	_, by, _ := strings.Cut(strings.TrimSpace(string(out)), " bytes moved by ")
	return n, by, nil
}
