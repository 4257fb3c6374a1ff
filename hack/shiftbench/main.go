// Command shiftbench measures the fallback for pools that cannot idmap
// (zfs-fuse): the one-time shift of an image's base for a map, with the
// Debian bookworm minbase image with systemd (hack/debian-image.sh) on a
// zfs pool. Each isolated instance has a range of its own, so each of its
// creates shifts the base once more; a privileged create (a clone, no
// shift) is timed beside it, and the shift is the difference. It also
// reports the entries walked and the space each shifted base takes.
// It needs root and a running zfs-fuse (or OpenZFS) daemon.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var runs = flag.Int("runs", 4, "timed runs")

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "shiftbench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	silo := benchutil.NewSilo(benchutil.BuildSilo(work), filepath.Join(work, "state"))
	run := silo.RunLenient // zfs-fuse drops the image's xattrs with a warning
	benchutil.Check(run("image", "import", benchutil.DebianImage(), "--alias", "debian"))
	benchutil.Check(run("pool", "create", "zbench", "--driver", "zfs", "--size", "8GiB"))
	var names []string
	defer func() {
		for _, n := range names {
			_ = run("delete", "--force", n)
		}
		_ = run("pool", "delete", "zbench")
		silo.Close()
	}()
	// The first create unpacks the base: not timed.
	benchutil.Check(run("create", "debian", "p", "--pool", "zbench", "-c", "security.privileged=true"))
	names = append(names, "p")
	var clone, shifted []time.Duration
	for i := range *runs {
		p, s := fmt.Sprintf("p%d", i), fmt.Sprintf("s%d", i)
		names = append(names, p, s)
		clone = append(clone, benchutil.Timed(func() error {
			return run("create", "debian", p, "--pool", "zbench", "-c", "security.privileged=true")
		}))
		shifted = append(shifted, benchutil.Timed(func() error {
			return run("create", "debian", s, "--pool", "zbench", "-c", "security.idmap.isolated=true")
		}))
	}
	shift := make([]time.Duration, len(shifted))
	for i := range shifted {
		shift[i] = shifted[i] - benchutil.Median(clone)
	}
	fmt.Printf("zfs pool, Debian bookworm minbase with systemd (%d entries), %d runs\n", entries(silo.State), *runs)
	fmt.Printf("create, privileged (a clone):          %s\n", benchutil.Stat(clone))
	fmt.Printf("create, isolated (a clone of a new shifted base): %s\n", benchutil.Stat(shifted))
	fmt.Printf("the base's shift alone:                %s  (each: %v)\n", benchutil.Stat(shift), shift)
	fmt.Printf("space of each image volume (zfs used): %s\n", shiftedUsed(zpool(silo.State)))
}

// entries counts the entries of the privileged instance's tree, which are
// the image's.
func entries(state string) int {
	vols, err := filepath.Glob(filepath.Join(state, "pools", "*", "volumes", "i-*"))
	benchutil.Check(err)
	if len(vols) == 0 {
		benchutil.Check(fmt.Errorf("no instance volume under %s", state))
	}
	n := 0
	benchutil.Check(filepath.WalkDir(vols[0], func(_ string, _ fs.DirEntry, err error) error {
		n++
		return err
	}))
	return n
}

// zpool is the zpool of the state directory's zfs pool.
func zpool(state string) string {
	ids, err := filepath.Glob(filepath.Join(state, "pools", "*"))
	benchutil.Check(err)
	for _, id := range ids {
		if exec.Command("zfs", "list", "silo-"+filepath.Base(id)).Run() == nil {
			return "silo-" + filepath.Base(id)
		}
	}
	benchutil.Check(fmt.Errorf("no zpool for the pools under %s", state))
	return ""
}

// shiftedUsed lists the space of the image volumes in zpool, in MB.
func shiftedUsed(zpool string) string {
	out, err := exec.Command("zfs", "get", "-Hp", "-r", "-o", "name,value", "used", zpool).Output()
	benchutil.Check(err)
	var sizes []string
	var largest int64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || !strings.Contains(f[0], "/volumes/img-") || strings.Contains(f[0], "@") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		benchutil.Check(err)
		largest = max(largest, n)
		sizes = append(sizes, fmt.Sprintf("%.1f", float64(n)/1e6))
	}
	return fmt.Sprintf("%s MB (the largest, %.1f MB, is the base)", strings.Join(sizes, " "), float64(largest)/1e6)
}
