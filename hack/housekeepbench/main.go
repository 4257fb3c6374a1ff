// Command housekeepbench measures `silo housekeep`, the background pass
// that `silo serve` runs each minute (and cron or a timer without it), on
// a btrfs pool of stopped busybox instances with a daily schedule: a pass
// with nothing due, which is what most minutes cost, and passes that take
// a snapshot of every instance and delete the day before's, which are
// what the schedule's minute costs.
//
// It needs root and btrfs-progs (make bench-housekeep). silo runs in a
// network namespace of its own; its state lives under a temporary
// directory, removed at the end.
package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	count = flag.Int("instances", 100, "instances with a schedule")
	runs  = flag.Int("runs", 11, "timed passes with nothing due")
	days  = flag.Int("days", 5, "timed passes that snapshot every instance")
)

func main() {
	flag.Parse()
	s, done := benchutil.TempSilo("housekeepbench")
	defer done()
	benchutil.Check(s.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
	benchutil.Check(s.Run("pool", "create", "hk", "--driver", "btrfs", "--size", "2GiB"))
	benchutil.Check(s.Run("profile", "create", "daily"))
	benchutil.Check(s.Run("profile", "set", "daily", "snapshots.schedule=0 6 * * *", "snapshots.schedule.stopped=true", "snapshots.expiry=1d"))
	for i := range *count {
		benchutil.Check(s.Run("create", "bb", fmt.Sprintf("i%03d", i), "--pool", "hk", "--no-network", "--profile", "daily"))
	}
	day0 := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	pass := func(at time.Time, taken, expired int) time.Duration {
		return benchutil.Timed(func() error {
			var r engine.HousekeepReport
			if err := s.JSON(&r, "housekeep", "--now", at.Format(time.RFC3339)); err != nil {
				return err
			}
			if len(r.Taken) != taken || len(r.Expired) != expired || len(r.Failed) > 0 {
				return fmt.Errorf("pass at %v: %d taken, %d expired, %v failed; want %d and %d", at, len(r.Taken), len(r.Expired), r.Failed, taken, expired)
			}
			return nil
		})
	}
	// The first day's pass makes the snapshots that later passes expire.
	first := pass(day0, *count, 0)
	var idle, busy []time.Duration
	for i := range *runs {
		idle = append(idle, pass(day0.Add(time.Duration(i+1)*time.Minute), 0, 0))
	}
	for d := 1; d <= *days; d++ {
		busy = append(busy, pass(day0.AddDate(0, 0, d), *count, *count))
	}
	fmt.Printf("btrfs, %d stopped busybox instances on a daily schedule; the whole command; medians [min-max]\n\n", *count)
	fmt.Printf("nothing due          %s  (%d runs)\n", benchutil.Stat(idle), *runs)
	fmt.Printf("%3d taken            %.1f ms  (the first day)\n", *count, float64(first.Microseconds())/1000)
	fmt.Printf("%3d taken, %3d gone  %s  (%d runs); %.1f ms an instance\n", *count, *count, benchutil.Stat(busy), *days,
		float64(benchutil.Median(busy).Microseconds())/1000/float64(*count))
	for i := range *count {
		benchutil.Check(s.Run("delete", fmt.Sprintf("i%03d", i)))
	}
	benchutil.Check(s.Run("pool", "delete", "hk"))
}
