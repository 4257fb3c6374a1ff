// Command metricsbench measures `silo metrics` with a number of running
// busybox instances, each with a nic, half of them with a capped root
// (whose usage the driver counts), on a btrfs pool; and, beside it, a
// shell completion of an instance's name (`silo __complete start ""`).
//
// It needs root and btrfs-progs (make bench-metrics provides them). silo
// runs in a network namespace of its own; its state lives under a
// temporary directory, removed at the end.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	instances = flag.Int("instances", 20, "running instances")
	runs      = flag.Int("runs", 21, "timed runs per figure")
)

func main() {
	flag.Parse()
	s, done := benchutil.TempSilo("metricsbench")
	defer done()
	benchutil.Check(s.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
	benchutil.Check(s.Run("pool", "create", "m", "--driver", "btrfs", "--size", "2GiB"))
	var names []string
	_, err := benchutil.Waves(*instances, 5, func(i int) error {
		name := "m" + strconv.Itoa(i)
		if err := s.Run("launch", "bb", name, "--wait", "--pool", "m"); err != nil || i%2 == 0 {
			return err
		}
		return s.Run("config", "device", "set", name, "root", "size=256MiB")
	})
	for i := range *instances {
		names = append(names, "m"+strconv.Itoa(i))
	}
	defer func() {
		for _, n := range names {
			_ = s.RunLenient("delete", "--force", n)
		}
		_ = s.Run("pool", "delete", "m")
	}()
	benchutil.Check(err)
	var size int
	timed := func(args ...string) []time.Duration {
		var ds []time.Duration
		for range *runs {
			cmd := s.Command(args...)
			var out bytes.Buffer
			cmd.Stdout = &out
			ds = append(ds, benchutil.Timed(func() error { return s.NS.Run(cmd) }))
			size = out.Len()
		}
		return ds
	}
	fmt.Printf("%d busybox instances running on btrfs, %d with a capped root; the whole command; %d runs; medians [min-max]\n\n",
		*instances, *instances/2, *runs)
	fmt.Printf("silo metrics              %s  (%d bytes of text)\n", benchutil.Stat(timed("metrics")), size)
	fmt.Printf("silo __complete start ''  %s\n", benchutil.Stat(timed("__complete", "start", "")))
	fmt.Printf("silo list                 %s  (for comparison)\n", benchutil.Stat(timed("list")))
}
