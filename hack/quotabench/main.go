// Command quotabench measures what a root disk quota costs: the write
// throughput inside a busybox instance (dd of random-free data, zeros,
// fsync'd, deleted between runs) with and without size= on its root disk,
// on each driver. Where a driver cannot keep a cap (dir on a filesystem
// without project quotas), it says why and reports the uncapped figure.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-quota
// provides them). silo runs in a network namespace of its own; its state
// lives under a temporary directory, removed at the end.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs    = flag.Int("runs", 7, "timed runs per figure")
	mib     = flag.Int("mib", 256, "MiB written per run")
	drivers = flag.String("drivers", "dir,btrfs,zfs", "drivers to measure")
)

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "quotabench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	s := benchutil.NewSilo(benchutil.BuildSilo(work), filepath.Join(work, "state"))
	defer s.Close()
	benchutil.Check(s.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
	fmt.Printf("busybox; dd of %d MiB with fsync inside the instance; %d runs per figure; medians [min-max]\n\n", *mib, *runs)

	write := fmt.Sprintf("dd if=/dev/zero of=/root/w bs=1M count=%d conv=fsync 2>/dev/null; rm /root/w; sync", *mib)
	for _, driver := range strings.Split(*drivers, ",") {
		pool := "q-" + driver
		args := []string{"pool", "create", pool, "--driver", driver}
		if driver != "dir" {
			args = append(args, "--size", fmt.Sprintf("%dMiB", 4**mib+1024))
		}
		benchutil.Check(s.Run(args...))
		capped := "capped-" + driver
		for _, name := range []string{"plain-" + driver, capped} {
			benchutil.Check(s.RunLenient("launch", "bb", name, "--wait", "--pool", pool))
		}
		// A cap of twice what is written: every write is checked against
		// it, and none reaches it.
		note := ""
		if err := s.Run("config", "device", "set", capped, "root", fmt.Sprintf("size=%dMiB", 2**mib)); err != nil {
			note = "  (no cap: " + strings.TrimSpace(err.Error()) + ")"
		}
		var plain, withCap []time.Duration
		for range *runs {
			plain = append(plain, benchutil.Timed(func() error { return s.Run("exec", "plain-"+driver, "--", "sh", "-c", write) }))
			withCap = append(withCap, benchutil.Timed(func() error { return s.Run("exec", capped, "--", "sh", "-c", write) }))
		}
		fmt.Printf("%-5s without a cap  %s  %s\n", driver, benchutil.Stat(plain), throughput(plain))
		fmt.Printf("%-5s with a cap     %s  %s%s\n", driver, benchutil.Stat(withCap), throughput(withCap), note)
		for _, name := range []string{"plain-" + driver, capped} {
			benchutil.Check(s.Run("delete", "--force", name))
		}
		benchutil.Check(s.Run("pool", "delete", pool))
	}
}

// throughput is the MB/s of the median run.
func throughput(ds []time.Duration) string {
	return fmt.Sprintf("%.0f MiB/s", float64(*mib)/benchutil.Median(ds).Seconds())
}
