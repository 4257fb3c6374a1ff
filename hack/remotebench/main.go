// Command remotebench measures silo's remotes: `silo list h2:` over mutual
// TLS from a second host, with N stopped instances on h2, beside the same
// listing made directly on h2; then `silo export h2:NAME` and `silo import
// FILE h2:NAME` of an instance of many files, beside the same commands on
// h2. The two
// hosts are two state directories in two network namespaces joined by a
// veth (198.51.100.1 and .2); nothing leaves the machine.
//
// It needs root and the busybox test image (hack/busybox-image.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/hack/benchutil"
	"github.com/silo-dev/silo/remote"
)

var (
	runs      = flag.Int("runs", 20, "timed runs per figure")
	clients   = flag.Int("clients", 100, "clients at once, each with its own TLS connection")
	instances = flag.Int("instances", 100, "stopped instances on h2")
	backupMB  = flag.Int("backup-mb", 256, "MB of files in the instance that export and import move (0: none)")
	backupRun = flag.Int("backup-runs", 5, "timed runs of each export and import")
	backupZ   = flag.String("backup-compression", "zstd", "the exports' compression")
)

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("/var/tmp", "remotebench-")
	benchutil.Check(err)
	defer os.RemoveAll(work)
	names := make([]string, *instances)
	hosts := benchutil.NewHosts(work, benchutil.BuildSilo(work), func(h2 *benchutil.Silo) {
		benchutil.Check(h2.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
		_, err := benchutil.Waves(len(names), 4, func(i int) error {
			names[i] = fmt.Sprintf("i%03d", i)
			return h2.Run("create", "bb", names[i])
		})
		benchutil.Check(err)
	})
	h1, h2 := hosts.H1, hosts.H2
	defer h1.Close()
	defer h2.Close()
	defer func() {
		_, err := benchutil.Waves(len(names), 4, func(i int) error { return h2.Run("delete", names[i]) })
		benchutil.Check(err)
	}()
	defer hosts.Close()

	var check []api.Instance
	benchutil.Check(h1.JSON(&check, "list", "h2:"))
	if len(check) != *instances {
		benchutil.Check(fmt.Errorf("list h2: shows %d instances, want %d", len(check), *instances))
	}
	fmt.Printf("%d stopped busybox instances on h2 (dir pool); %d runs, medians [min-max]\n", *instances, *runs)
	figure("silo list h2: --format json (h1, over TLS)", func() error { return h1.Run("list", "h2:", "--format", "json") })
	figure("silo list --format json (on h2, direct)", func() error { return h2.Run("list", "--format", "json") })
	load(h1, hosts.Conf)
	if *backupMB > 0 {
		backups(h1, h2, work)
	}
}

// backups times silo export and import of an instance of backupMB on
// h2: from h1 through h2's API over TLS, and directly on h2. The exports
// go to /dev/null, as over a pipe to another host; the imports read one
// export's file.
func backups(h1, h2 *benchutil.Silo, work string) {
	tree, img := filepath.Join(work, "tree"), filepath.Join(work, "tree.tar")
	benchutil.Check(benchutil.MakeTree(tree, int64(*backupMB)<<20))
	benchutil.Check(benchutil.TarTree(tree, img))
	os.RemoveAll(tree)
	benchutil.Check(h2.Run("image", "import", img, "--alias", "tree"))
	benchutil.Check(h2.Run("create", "tree", "big"))
	defer func() { benchutil.Check(h2.Run("delete", "big")) }()
	file := filepath.Join(work, "big.backup")
	benchutil.Measure(h2, file, "", "export", "big", "-o", "-", "--compression", *backupZ)
	st, err := os.Stat(file)
	benchutil.Check(err)
	fmt.Printf("an instance of %d MB of files (%.0f MB exported, %s); %d runs, medians [min-max]\n", *backupMB, float64(st.Size())/1e6, *backupZ, *backupRun)
	timed := func(what string, fn func(i int) time.Duration) {
		var ds []time.Duration
		for i := range *backupRun {
			ds = append(ds, fn(i))
		}
		fmt.Printf("  %-50s %s, %.0f MB/s of files\n", what, benchutil.Stat(ds), float64(*backupMB)/benchutil.Median(ds).Seconds())
	}
	for _, c := range []struct {
		what string
		s    *benchutil.Silo
		ref  string
	}{{"silo export h2:big -o - (h1, over TLS)", h1, "h2:big"}, {"silo export big -o - (on h2, direct)", h2, "big"}} {
		timed(c.what, func(int) time.Duration {
			d, _ := benchutil.Measure(c.s, "/dev/null", "", "export", c.ref, "-o", "-", "--compression", *backupZ)
			return d
		})
	}
	for _, c := range []struct {
		what, prefix string
		s            *benchutil.Silo
	}{{"silo import - h2:NAME (h1, over TLS)", "h2:", h1}, {"silo import - NAME (on h2, direct)", "", h2}} {
		timed(c.what, func(i int) time.Duration {
			name := fmt.Sprintf("imported%d", i)
			d, _ := benchutil.Measure(c.s, "", file, "import", "-", c.prefix+name)
			benchutil.Check(h2.Run("delete", name))
			return d
		})
	}
}

// figure prints the times of fn, after one untimed run.
func figure(what string, fn func() error) {
	benchutil.Check(fn())
	var ds []time.Duration
	for range *runs {
		ds = append(ds, benchutil.Timed(fn))
	}
	fmt.Printf("  %-50s %s\n", what, benchutil.Stat(ds))
}

// load has many clients list h2's instances at once, each over a TLS
// connection of its own (a handshake each), dialled from h1's namespace.
func load(h1 *benchutil.Silo, conf string) {
	cfg, err := remote.Load(conf)
	benchutil.Check(err)
	tlsCfg, err := cfg.TLS("h2")
	benchutil.Check(err)
	times := make([]time.Duration, *clients)
	start := time.Now()
	_, err = benchutil.Waves(*clients, *clients, func(i int) error {
		tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := h1.NS.Do(func() (err error) { c, err = (&net.Dialer{}).DialContext(ctx, network, addr); return err })
			return c, err
		}}
		defer tr.CloseIdleConnections()
		t0 := time.Now()
		_, err := client.New(cfg.Remotes["h2"].Addr, &http.Client{Transport: tr}).Instances(context.Background())
		times[i] = time.Since(t0)
		return err
	})
	benchutil.Check(err)
	fmt.Printf("  %-50s %s; all answered in %.0f ms\n", fmt.Sprintf("%d clients at once, GET recursion=2 over TLS", *clients),
		benchutil.Stat(times), float64(time.Since(start).Microseconds())/1000)
}
