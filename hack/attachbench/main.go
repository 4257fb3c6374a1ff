// Command attachbench measures `silo volume attach` and `volume detach`
// of a custom volume on a running busybox instance: the whole command,
// from its start to the volume mounted (or gone) inside, on each driver.
// The instance is unprivileged, so the mount is idmapped, except on zfs,
// whose zfs-fuse volumes the kernel cannot idmap: there it is privileged.
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-attach
// provides them). silo runs in a network namespace of its own; its state
// lives under a temporary directory, removed at the end.
package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs    = flag.Int("runs", 21, "timed attaches and detaches per driver")
	drivers = flag.String("drivers", "dir,btrfs,zfs", "drivers to measure")
)

func main() {
	flag.Parse()
	s, done := benchutil.TempSilo("attachbench")
	defer done()
	benchutil.Check(s.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
	fmt.Printf("busybox, running; the whole command; %d runs per figure; medians [min-max]\n\n", *runs)
	for _, driver := range strings.Split(*drivers, ",") {
		pool := "a-" + driver
		args := []string{"pool", "create", pool, "--driver", driver}
		if driver != "dir" {
			args = append(args, "--size", "1GiB")
		}
		benchutil.Check(s.Run(args...))
		inst, how := "u-"+driver, "unprivileged, idmapped"
		launch := []string{"launch", "bb", inst, "--wait", "--pool", pool}
		if driver == "zfs" {
			launch, how = append(launch, "-c", "security.privileged=true"), "privileged"
		}
		benchutil.Check(s.RunLenient(launch...))
		benchutil.Check(s.Run("volume", "create", pool, "v"))
		attachArgs := []string{"volume", "attach", pool, "v", inst, "/data"}
		var attach, detach []time.Duration
		for range *runs {
			attach = append(attach, benchutil.Timed(func() error { return s.Run(attachArgs...) }))
			benchutil.Check(s.Run("exec", inst, "--", "sh", "-c", "grep -q ' /data ' /proc/mounts"))
			detach = append(detach, benchutil.Timed(func() error { return s.Run("volume", "detach", pool, "v", inst) }))
		}
		fmt.Printf("%-5s attach  %s  (%s)\n", driver, benchutil.Stat(attach), how)
		fmt.Printf("%-5s detach  %s\n", driver, benchutil.Stat(detach))
		benchutil.Check(s.Run("delete", "--force", inst))
		benchutil.Check(s.Run("volume", "delete", pool, "v"))
		benchutil.Check(s.Run("pool", "delete", pool))
	}
}
