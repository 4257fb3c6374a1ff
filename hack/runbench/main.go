// Command runbench measures silo's runtime with whole commands, as users
// run them, on the Debian bookworm minbase image with systemd
// (hack/debian-image.sh) on a btrfs loop pool:
//
//   - launch to first exec: "silo launch", then "silo exec -- true", of
//     a default (unprivileged) instance and of a privileged one, one
//     after the other in each run;
//   - start to systemd running: "silo start --wait";
//   - "silo exec -- true" on a running instance;
//   - graceful stop of systemd: "silo stop";
//   - memory spent outside the containers per running instance (the
//     monitors: proportional set size, shared pages split between them);
//   - how many instances run at once, launched in waves up to -max, each
//     waited for until systemd says running or degraded; every other one
//     isolated (security.idmap.isolated).
//
// It needs root, runc and btrfs-progs (make bench-run provides them).
// Everything lives under a temporary state directory, removed at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs = flag.Int("runs", 11, "timed runs per figure")
	max  = flag.Int("max", 100, "instances to run at once, at most (0 to skip)")
	wave = flag.Int("wave", 10, "instances launched at once while ramping up")
)

func main() {
	flag.Parse()
	bench := benchutil.NewDebian("runbench")
	defer bench.Close()
	run := bench.Run
	// The first create puts the image on the pool; it is not timed.
	benchutil.Check(run("create", "debian", "warm", "--pool", "bench"))
	bench.Names = append(bench.Names, "warm")
	fmt.Printf("Debian bookworm minbase with systemd on a btrfs loop pool; %d runs per figure; medians [min-max]\n\n", *runs)

	var launch, privileged, boot, execs, stop []time.Duration
	launched := func(name string, config ...string) time.Duration {
		bench.Names = append(bench.Names, name)
		return benchutil.Timed(func() error {
			if err := run(append([]string{"launch", "debian", name, "--pool", "bench"}, config...)...); err != nil {
				return err
			}
			return run("exec", name, "--", "true")
		})
	}
	for i := range *runs {
		// Each launch leaves systemd booting: which goes first
		// alternates, so that neither always shares the CPUs with it.
		name, priv := fmt.Sprintf("l%d", i), fmt.Sprintf("p%d", i)
		if i%2 == 0 {
			launch = append(launch, launched(name))
		}
		privileged = append(privileged, launched(priv, "-c", "security.privileged=true"))
		benchutil.Check(run("delete", "--force", priv))
		if i%2 == 1 {
			launch = append(launch, launched(name))
		}
		benchutil.Check(run("stop", name, "--force"))
		boot = append(boot, benchutil.Timed(func() error { return run("start", name, "--wait") }))
		execs = append(execs, benchutil.Timed(func() error { return run("exec", name, "--", "true") }))
		stop = append(stop, benchutil.Timed(func() error { return run("stop", name) }))
	}
	fmt.Printf("launch to first exec     %s   [LXD 2.0 s]\n", benchutil.Stat(launch))
	fmt.Printf("  the same, privileged   %s\n", benchutil.Stat(privileged))
	fmt.Printf("start to systemd running %s   [LXD 2.2 s]\n", benchutil.Stat(boot))
	fmt.Printf("exec -- true             %s   [LXD 154 ms]\n", benchutil.Stat(execs))
	fmt.Printf("graceful stop            %s   [LXD 953 ms]\n", benchutil.Stat(stop))
	if *max == 0 {
		return
	}

	// Ramp up: waves of launches, each instance waited for.
	running, failed := benchutil.Waves(*max, *wave, func(i int) error {
		name := fmt.Sprintf("m%d", i)
		bench.Track(name)
		args := []string{"launch", "debian", name, "--pool", "bench", "--wait", "--timeout", "5m"}
		if i%2 == 1 {
			args = append(args, "-c", "security.idmap.isolated=true")
		}
		return run(args...)
	})
	pss, dirty, monitors := monitorMemory()
	fmt.Printf("\ninstances running at once: %d of %d asked", running, *max)
	if failed != nil {
		fmt.Printf(" (stopped at: %v)", failed)
	}
	fmt.Printf("\nmemory outside the containers, per instance: %.2f MiB proportional (%.2f MiB private) over %d monitors\n",
		float64(pss)/float64(monitors)/(1<<20), float64(dirty)/float64(monitors)/(1<<20), monitors)
	fmt.Printf("host memory available with them running: %s\n", benchutil.MemAvailable())
}

// monitorMemory sums the proportional and private dirty memory of every
// silo monitor.
func monitorMemory() (pss, private int64, n int) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), "silo-monitor") {
			continue
		}
		f, err := os.Open(filepath.Join(d, "smaps_rollup"))
		if err != nil {
			continue
		}
		n++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			switch fields[0] {
			case "Pss:":
				pss += kb << 10
			case "Private_Dirty:":
				private += kb << 10
			}
		}
		f.Close()
	}
	return pss, private, n
}
