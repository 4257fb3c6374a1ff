// Command backupbench measures silo's instance backups with whole
// commands, on the Debian bookworm minbase image with systemd
// (hack/debian-image.sh) on a btrfs loop pool:
//
//   - "silo export" of the instance (zstd): time and size;
//   - the same with 5 snapshots, each taken after changing a few files;
//   - "silo import" of each;
//   - the peak memory (maximum resident set) of each command;
//   - the same figures for --optimized, for comparison.
//
// Exports go to /dev/null for the timings, as over a pipe to another
// host, and once to a file for the size and the import.
// It needs root and btrfs-progs (make bench-backup provides them).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/hack/benchutil"
)

var runs = flag.Int("runs", 5, "timed runs per figure")

func main() {
	flag.Parse()
	bench := benchutil.NewDebian("backupbench")
	defer bench.Close()
	work, run := bench.Work, bench.Run
	benchutil.Check(run("create", "debian", "plain", "--pool", "bench"))
	benchutil.Check(run("create", "debian", "snapped", "--pool", "bench"))
	bench.Names = append(bench.Names, "plain", "snapped")
	for i := range 5 {
		for _, f := range []string{"/etc/motd", "/root/notes", fmt.Sprintf("/var/log/change%d", i)} {
			src := filepath.Join(work, "change")
			benchutil.Check(os.WriteFile(src, []byte(strings.Repeat(fmt.Sprintf("change %d\n", i), 100*(i+1))), 0o644))
			benchutil.Check(run("file", "push", src, "snapped"+f))
		}
		benchutil.Check(run("snapshot", "create", "snapped"))
	}
	var info api.Instance
	benchutil.Check(bench.JSON(&info, "info", "plain"))
	fmt.Printf("btrfs loop pool, Debian bookworm minbase with systemd (%d MB on disk), medians of %d runs\n", info.State.Disk[api.RootDevice].Usage/1e6, *runs)

	k := 0
	for _, c := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"snapped", nil},
		{"plain", []string{"--optimized"}},
		{"snapped", []string{"--optimized"}},
	} {
		label := c.name + " " + strings.Join(c.args, " ")
		exp := append([]string{"export", c.name, "-o", "-"}, c.args...)
		var times []time.Duration
		var peak int64
		for range *runs {
			d, rss := benchutil.Measure(bench.Silo, "/dev/null", "", exp...)
			times, peak = append(times, d), max(peak, rss)
		}
		file := filepath.Join(work, fmt.Sprintf("backup%d", k))
		benchutil.Measure(bench.Silo, file, "", exp...)
		st, err := os.Stat(file)
		benchutil.Check(err)
		fmt.Printf("export %-20s %s, %.1f MB, peak memory %d MB\n", label, benchutil.Stat(times), float64(st.Size())/1e6, peak>>10)

		times, peak = nil, 0
		for i := range *runs {
			name := fmt.Sprintf("imported%d-%d", k, i)
			d, rss := benchutil.Measure(bench.Silo, "", file, "import", "-", name, "--pool", "bench")
			times, peak = append(times, d), max(peak, rss)
			bench.Names = append(bench.Names, name)
		}
		fmt.Printf("import %-20s %s, peak memory %d MB\n", label, benchutil.Stat(times), peak>>10)
		for _, n := range bench.Names[2:] {
			benchutil.Check(run("delete", n))
		}
		bench.Names = bench.Names[:2]
		k++
	}
}
