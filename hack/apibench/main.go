// Command apibench measures silo serve: GET /1.0/instances?recursion=1
// with -n instances over the unix socket (median of -runs requests, one
// client, then -clients at once), and the server's memory (RSS) after
// them; then exec of true in a running instance, -execs times, through
// the API (POST, the websockets, the exit code) beside the CLI's own. The instances are stopped busybox ones on the default dir pool: a
// listing reads the same records for a running one, and 100 running ones
// would need the host's key limits raised. It needs root (make bench-api).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/hack/benchutil"
)

var (
	count   = flag.Int("n", 100, "instances to list")
	runs    = flag.Int("runs", 200, "timed requests")
	clients = flag.Int("clients", 100, "clients at once, for the concurrent figure")
	execs   = flag.Int("execs", 50, "timed execs")
)

func main() {
	flag.Parse()
	s, done := benchutil.TempSilo("apibench")
	defer done()
	benchutil.Check(s.Run("image", "import", benchutil.BusyboxImage(), "--alias", "bb"))
	var names []string
	defer func() {
		for _, n := range names {
			_ = s.Run("delete", n)
		}
	}()
	for i := range *count {
		name := fmt.Sprintf("i%03d", i)
		benchutil.Check(s.Run("create", "bb", name))
		names = append(names, name)
	}

	serve := s.Command("serve")
	benchutil.Check(s.NS.Start(serve))
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_ = serve.Wait()
	}()
	socket := filepath.Join(s.State, "unix.socket")
	c := client.NewUnix(socket)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := c.Server(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			benchutil.Check(fmt.Errorf("silo serve does not answer"))
		}
	}
	fmt.Printf("GET /1.0/instances?recursion=1, %d stopped instances, over the unix socket\n", *count)
	fmt.Printf("server RSS before: %s\n", rss(serve.Process.Pid, "VmRSS"))

	hc := client.UnixHTTP(socket)
	list := func() error { return get(hc, *count) }
	benchutil.Check(list()) // warm
	var one []time.Duration
	for range *runs {
		one = append(one, benchutil.Timed(list))
	}
	fmt.Printf("one client:          %s\n", benchutil.Stat(one))

	var mu sync.Mutex
	var many []time.Duration
	var wg sync.WaitGroup
	for range *clients {
		wg.Go(func() {
			own := client.UnixHTTP(socket)
			d := benchutil.Timed(func() error { return get(own, *count) })
			mu.Lock()
			many = append(many, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("%d clients at once:  %s (each request's time)\n", *clients, benchutil.Stat(many))
	fmt.Printf("server RSS after:  %s (peak %s)\n", rss(serve.Process.Pid, "VmRSS"), rss(serve.Process.Pid, "VmHWM"))

	// exec: a running instance.
	benchutil.Check(s.Run("start", names[0], "--wait"))
	defer func() { _ = s.Run("stop", names[0], "--force") }()
	viaAPI := func() error {
		x, err := c.Exec(context.Background(), names[0], api.InstanceExecPost{Command: []string{"true"}},
			client.ExecStreams{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			return err
		}
		if code, err := x.Wait(context.Background()); err != nil || code != 0 {
			return fmt.Errorf("exec true: exit %d, %v", code, err)
		}
		return nil
	}
	viaCLI := func() error { return s.Run("exec", names[0], "--", "true") }
	for _, m := range []struct {
		what string
		fn   func() error
	}{{"through the API (POST, 4 websockets, wait)", viaAPI}, {"silo exec, the whole command", viaCLI}} {
		benchutil.Check(m.fn()) // warm
		var ds []time.Duration
		for range *execs {
			ds = append(ds, benchutil.Timed(m.fn))
		}
		fmt.Printf("exec true, %s: %s\n", m.what, benchutil.Stat(ds))
	}
}

// get lists the instances as a program would: the request, and the
// answer decoded.
func get(hc *http.Client, want int) error {
	resp, err := hc.Get("http://silo/1.0/instances?recursion=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var insts []api.Instance
	if err := json.NewDecoder(resp.Body).Decode(&api.Response{Metadata: &insts}); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(insts) != want {
		return fmt.Errorf("%s: %d instances, want %d", resp.Status, len(insts), want)
	}
	return nil
}

// rss is a line of /proc/PID/status, in MB.
func rss(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	benchutil.Check(err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "?"
}
