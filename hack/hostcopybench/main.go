// Command hostcopybench measures copies between hosts: `silo copy web
// h2:web` of the Debian bookworm minbase instance (hack/debian-image.sh)
// with one snapshot, beside `silo export --optimized` of the same instance
// to a local file, which writes the same stream; and `silo copy web h2:web
// --refresh` after a 1 MB change, with the bytes that crossed the wire.
// The hosts are two state directories in two network namespaces joined by
// a veth, each with a btrfs loop pool and a CPU of its own;
// nothing leaves the machine. It needs two CPUs.
//
// It needs root and btrfs-progs (make bench-hostcopy provides them). On
// zfs-fuse, which cannot idmap, an instance's files are shifted on disk,
// and silo export refuses to write them in the driver's streams.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	runs = flag.Int("runs", 5, "timed runs per figure")
)

const pool = "bench"

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "hostcopybench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	// Two hosts, each with a CPU of its own, as two machines would be: a
	// copy's sender and receiver work at once, and the local export has
	// the one CPU the sender has.
	hosts := benchutil.NewHosts(work, benchutil.BuildSilo(work), func(h2 *benchutil.Silo) {
		h2.CPUs = "1"
		createPool(h2)
	})
	h1, h2 := hosts.H1, hosts.H2
	h1.CPUs = "0"
	defer h1.Close()
	defer h2.Close()
	defer deletePool(h2)
	defer hosts.Close()
	createPool(h1)
	defer deletePool(h1)
	benchutil.Check(h1.Run("image", "import", benchutil.DebianImage(), "--alias", "debian"))
	// zfs-fuse drops the image's extended attributes, and says so.
	benchutil.Check(h1.RunLenient("create", "debian", "web", "--pool", pool))
	defer func() { benchutil.Check(h1.Run("delete", "web")) }()
	benchutil.Check(h1.Run("snapshot", "create", "web"))
	var inst api.Instance
	benchutil.Check(h1.JSON(&inst, "info", "web"))
	mb := float64(inst.State.Disk["root"].Usage) / (1 << 20)

	fmt.Printf("Debian bookworm minbase with systemd, %.0f MB, one snapshot, btrfs pools, h1 on CPU 0 and h2 on CPU 1; %d runs, medians [min-max]\n", mb, *runs)
	file := filepath.Join(work, "web.tar.zst")
	var exports, copies []time.Duration
	var wire []int64
	for range *runs {
		exports = append(exports, benchutil.Timed(func() error { return h1.Run("export", "web", "--optimized", "-o", file) }))
		benchutil.Check(os.Remove(file))
		before := hosts.WireBytes()
		copies = append(copies, benchutil.Timed(func() error { return h1.Run("copy", "web", "h2:web", "--pool", pool) }))
		wire = append(wire, hosts.WireBytes()-before)
		benchutil.Check(h2.Run("delete", "web"))
	}
	rate := func(ds []time.Duration) string { return fmt.Sprintf("%.0f MB/s", mb/benchutil.Median(ds).Seconds()) }
	fmt.Printf("  %-44s %s, %s\n", "silo export --optimized (h1, to a file)", benchutil.Stat(exports), rate(exports))
	fmt.Printf("  %-44s %s, %s, %s on the wire; %.0f%% of the export's rate\n", "silo copy web h2:web (h1 to h2, TLS)",
		benchutil.Stat(copies), rate(copies), megabytes(slices.Sorted(slices.Values(wire))[len(wire)/2]),
		100*benchutil.Median(exports).Seconds()/benchutil.Median(copies).Seconds())

	// The copy a user means to refresh, then refreshes after a change.
	benchutil.Check(h1.Run("copy", "web", "h2:web", "--pool", pool))
	defer func() { benchutil.Check(h2.Run("delete", "web")) }()
	var refreshes []time.Duration
	wire = wire[:0]
	for i := range *runs {
		benchutil.Check(h1.Run("snapshot", "create", "web"))
		benchutil.Check(h1.Run("copy", "web", "h2:web", "--refresh"))
		benchutil.Check(h1.Change("web", fmt.Sprintf("/root/change%d", i), 1<<20))
		before := hosts.WireBytes()
		refreshes = append(refreshes, benchutil.Timed(func() error { return h1.Run("copy", "web", "h2:web", "--refresh") }))
		wire = append(wire, hosts.WireBytes()-before)
	}
	slices.Sort(wire)
	fmt.Printf("  %-44s %s, %s on the wire [%s-%s]\n", "copy --refresh after a 1 MB change",
		benchutil.Stat(refreshes), megabytes(wire[len(wire)/2]), megabytes(wire[0]), megabytes(wire[len(wire)-1]))
}

func createPool(s *benchutil.Silo) {
	benchutil.Check(s.Run("pool", "create", pool, "--driver", "btrfs", "--size", "4GiB"))
}

func deletePool(s *benchutil.Silo) { benchutil.Check(s.Run("pool", "delete", pool)) }

func megabytes(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/(1<<20)) }
