// Command clibench measures whole silo commands, process start to exit, as
// users run them: create from an image already on the pool, snapshot create
// and snapshot restore, on btrfs and zfs loop pools (and dir on request).
// `silo list` is timed beside them: it is the floor every command pays
// (process start, opening the store), and on zfs the bare zfs commands
// that a create and a snapshot run. The image is Debian bookworm minbase
// (hack/debian-image.sh), as in LXD's figures, so a create writes the
// machine ID and hostname that a real image has; -tree measures a
// synthetic tree instead. -baseline times an earlier build of silo in
// the same run, round by round, for a ratio that this noisy machine's
// drift does not skew (make bench-cli BENCH_ARGS="-baseline old/silo").
//
// It needs root, btrfs-progs and a ZFS that answers (make bench-cli
// provides them). Everything lives under a temporary state directory,
// removed at the end.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	treeMB   = flag.Int("tree", 0, "use a synthetic tree of this many MB, not the Debian image")
	runs     = flag.Int("runs", 11, "timed runs per figure")
	drivers  = flag.String("drivers", "btrfs,zfs", "drivers to measure, comma-separated (btrfs, zfs, dir)")
	baseline = flag.String("baseline", "", "another silo binary to time in the same run, round by round with this one, each in a state directory of its own")
)

// subject is one silo binary under test, with its own state directory.
type subject struct {
	label, bin string
	*benchutil.Silo
	create, snap  []time.Duration
	restore, list []time.Duration
}

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "clibench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)

	subjects := []*subject{{label: "silo", bin: benchutil.BuildSilo(work)}}
	if *baseline != "" {
		abs, err := filepath.Abs(*baseline)
		benchutil.Check(err)
		subjects = append(subjects, &subject{label: "baseline", bin: abs})
	}
	image, what := "", ""
	if *treeMB > 0 {
		tree := filepath.Join(work, "tree")
		benchutil.Check(benchutil.MakeTree(tree, int64(*treeMB)<<20))
		image, what = filepath.Join(work, "image.tar"), fmt.Sprintf("synthetic %d MB tree", *treeMB)
		benchutil.Check(benchutil.TarTree(tree, image))
		os.RemoveAll(tree)
	} else {
		image, what = benchutil.DebianImage(), "Debian bookworm minbase"
	}
	for i, s := range subjects {
		s.Silo = benchutil.NewSilo(s.bin, filepath.Join(work, fmt.Sprintf("state%d", i)))
		defer s.Close()
		benchutil.Check(s.Run("image", "import", image, "--alias", "bench"))
	}
	fmt.Printf("image: %s; %d runs per figure; whole commands, medians [min-max]\n\n", what, *runs)

	for _, driver := range strings.Split(*drivers, ",") {
		pool := "b-" + driver
		args := []string{"pool", "create", pool, "--driver", driver}
		if driver != "dir" {
			args = append(args, "--size", fmt.Sprintf("%dMiB", max(2048, *treeMB*3+1024)))
		}
		var floor *benchutil.ZFSFloor
		for _, s := range subjects {
			s.create, s.snap, s.restore, s.list = nil, nil, nil, nil
			benchutil.Check(s.Run(args...))
			// The first create puts the image on the pool; it is not timed.
			benchutil.Check(s.RunLenient("create", "bench", "w-"+driver, "--pool", pool))
			if driver == "zfs" && floor == nil {
				floor = benchutil.NewZFSFloor(zpoolIn(s.State))
			}
		}
		// Round by round, so that the machine's drift weighs on every
		// subject alike.
		for i := range *runs {
			for _, s := range subjects {
				name := fmt.Sprintf("c%d-%s", i, driver)
				s.create = append(s.create, benchutil.Timed(func() error { return s.Run("create", "bench", name, "--pool", pool) }))
				s.snap = append(s.snap, benchutil.Timed(func() error { return s.Run("snapshot", "create", "w-"+driver) }))
				// Restore the oldest snapshot: every newer one is kept.
				s.restore = append(s.restore, benchutil.Timed(func() error { return s.Run("snapshot", "restore", "w-"+driver, "snap0") }))
				s.list = append(s.list, benchutil.Timed(func() error { return s.Run("list") }))
			}
			if floor != nil {
				floor.Run()
			}
		}
		for _, s := range subjects {
			label := driver
			if len(subjects) > 1 {
				label += " " + s.label
			}
			fmt.Printf("%-14s create %s  snapshot %s  restore %s  (list %s)\n", label,
				benchutil.Stat(s.create), benchutil.Stat(s.snap), benchutil.Stat(s.restore), benchutil.Stat(s.list))
		}
		if floor != nil {
			fmt.Printf("      %s\n", floor)
		}
		for _, s := range subjects {
			benchutil.Check(s.Run("delete", "w-"+driver))
			for i := range *runs {
				benchutil.Check(s.Run("delete", fmt.Sprintf("c%d-%s", i, driver)))
			}
			benchutil.Check(s.Run("pool", "delete", pool))
		}
	}
	fmt.Println("\nLXD 5.0 on this kind of machine: create 396 ms, snapshot 215 ms, restore 275 ms")
}

// zpoolIn returns the zpool of the one zfs pool in state: silo names it
// silo-ID, where ID also names the pool's directory under state/pools.
func zpoolIn(state string) string {
	entries, err := os.ReadDir(filepath.Join(state, "pools"))
	benchutil.Check(err)
	for _, e := range entries {
		if exec.Command("zpool", "list", "silo-"+e.Name()).Run() == nil {
			return "silo-" + e.Name()
		}
	}
	benchutil.Check(fmt.Errorf("no zpool for the pools under %s", state))
	return ""
}
