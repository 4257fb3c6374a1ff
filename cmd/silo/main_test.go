package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/testutil"
)

// silo is the command under test, built once.
var siloBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "silo-bin")
	if err != nil {
		panic(err)
	}
	siloBin = filepath.Join(dir, "silo")
	if out, err := exec.Command("go", "build", "-o", siloBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build silo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one state directory and the pool the test works on, and the
// network namespace that silo runs in: its bridges, rules and dnsmasq
// never touch the host's network.
type env struct {
	t      *testing.T
	state  string
	driver string
	pool   string // "" for the default pool
	extra  []string
	netns  string // its name under /run/netns
}

// silo is the command line that runs silo in the env's network namespace.
func (e *env) silo(args ...string) []string {
	if e.netns == "" {
		return append([]string{siloBin}, args...)
	}
	return append([]string{"nsenter", "--net=/run/netns/" + e.netns, siloBin}, args...)
}

// onHostNetwork runs fn with silo on the host's network: for a command
// that fetches from Debian's mirror (image build), and starts nothing.
func (e *env) onHostNetwork(fn func()) {
	ns := e.netns
	e.netns = ""
	defer func() { e.netns = ns }()
	fn()
}

type result struct {
	out, err string
	code     int
	signal   syscall.Signal
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runIn(nil, args...)
}

func (e *env) runIn(stdin []byte, args ...string) result {
	e.t.Helper()
	argv := e.silo(args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "SILO_STATE_DIR="+e.state), e.extra...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("run silo %v: %v", args, err)
	}
	// A command that hangs is stopped with its goroutines and the kernel
	// stacks of its processes on record, so that the test fails at once
	// and says where, instead of the package timing out.
	stuck := make(chan string, 1)
	watchdog := time.AfterFunc(commandTimeout, func() {
		stuck <- processReport(cmd.Process.Pid)
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
	})
	err := cmd.Wait()
	watchdog.Stop()
	r := result{out: out.String(), err: errb.String()}
	select {
	case report := <-stuck:
		r.code = -1
		r.err = fmt.Sprintf("silo %s: still running after %v\n%s\n%s", strings.Join(args, " "), commandTimeout, report, r.err)
		// Printed now as well: the test's cleanup may hang on the same cause.
		fmt.Fprintln(os.Stderr, r.err)
		return r
	default:
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	} else if err != nil {
		e.t.Fatalf("run silo %v: %v", args, err)
	}
	return r
}

// commandTimeout is far beyond any command of the tests: building a Debian
// image from the mirror takes under a minute.
const commandTimeout = 5 * time.Minute

// processReport describes pid and its descendants: command line, where in
// the kernel each waits, and its kernel stack.
func processReport(pid int) string {
	var b strings.Builder
	var walk func(pid int, depth int)
	walk = func(pid int, depth int) {
		read := func(name string) string {
			data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
			return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
		}
		ind := strings.Repeat("  ", depth)
		fmt.Fprintf(&b, "%spid %d: %s (wchan %s)\n", ind, pid, read("cmdline"), read("wchan"))
		for _, line := range strings.Split(read("stack"), "\n") {
			fmt.Fprintf(&b, "%s    %s\n", ind, line)
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
			for _, kid := range strings.Fields(string(kids)) {
				if k, err := strconv.Atoi(kid); err == nil {
					walk(k, depth+1)
				}
			}
		}
	}
	walk(pid, 0)
	return b.String()
}

// ok runs silo and fails the test unless it succeeds.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("silo %s: exit %d: %s", strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

// fails runs silo and checks that it fails with code and one line on stderr
// that contains want.
func (e *env) fails(code int, want string, args ...string) {
	e.t.Helper()
	r := e.run(args...)
	if r.code != code || !strings.Contains(r.err, want) || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "silo: error: ") {
		e.t.Fatalf("silo %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(args, " "), r.code, r.err, code, want)
	}
}

func (e *env) json(v any, args ...string) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(e.ok(append(args, "--format", "json")...)), v); err != nil {
		e.t.Fatalf("silo %v: %v", args, err)
	}
}

// apiJSON reads the JSON of a silo command into v, an api type, strictly:
// a field that v does not have fails the test.
func (e *env) apiJSON(v any, args ...string) {
	e.t.Helper()
	dec := json.NewDecoder(strings.NewReader(e.ok(append(args, "--format", "json")...)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e.t.Fatalf("silo %v: %v", args, err)
	}
}

// instances is what silo list says.
func (e *env) instances() []api.Instance {
	e.t.Helper()
	var list []api.Instance
	e.apiJSON(&list, "list")
	return list
}

// bases lists the pools that hold a base volume of the image ref.
func (e *env) bases(ref string) []string {
	e.t.Helper()
	var img api.Image
	e.json(&img, "image", "info", ref)
	var pools []api.StoragePool
	e.json(&pools, "pool", "list")
	var on []string
	for _, p := range pools {
		if slices.Contains(p.UsedBy, api.Path("images", img.Fingerprint)) {
			on = append(on, p.Name)
		}
	}
	return on
}

// consistent checks the records against what the pools hold.
func (e *env) consistent() {
	e.t.Helper()
	eng, err := engine.Open(context.Background(), e.state)
	if err != nil {
		e.t.Fatal(err)
	}
	defer eng.Close()
	problems, err := eng.Check(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(problems) > 0 {
		e.t.Fatalf("the records and the pools disagree:\n%s", strings.Join(problems, "\n"))
	}
}

// mounts counts the mounts below the state directory.
func (e *env) mounts() int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.state+"/") {
			n++
		}
	}
	return n
}

func (e *env) poolArgs() []string {
	if e.pool == "" {
		return nil
	}
	return []string{"--pool", e.pool}
}

// newEnv makes a state directory with a pool of driver (the default dir
// pool for "dir"), removed when the test ends.
func newEnv(t *testing.T, driver string) *env {
	testutil.NeedRoot(t, "silo's commands make pools, give files their owners and run containers")
	e := &env{t: t, state: t.TempDir(), driver: driver, netns: testutil.NetNS(t)}
	if driver != "dir" {
		needDriver(t, driver)
		e.pool = "p" + driver
		e.ok("pool", "create", e.pool, "--driver", driver, "--size", "1GiB")
	}
	t.Cleanup(func() { e.teardown() })
	return e
}

// teardown deletes every instance and pool, so that no mount, loop device
// or zpool outlives the test.
func (e *env) teardown() {
	var insts []struct{ Name string }
	e.json(&insts, "list")
	for _, i := range insts {
		e.ok("delete", "--force", i.Name)
	}
	var vols []api.StorageVolume
	e.json(&vols, "volume", "list")
	for _, v := range vols {
		e.ok("volume", "delete", v.Pool, v.Name)
	}
	var pools []struct{ Name string }
	e.json(&pools, "pool", "list")
	for _, p := range pools {
		e.ok("pool", "delete", p.Name)
	}
	// The networks go with every trace of them: first the profiles'
	// nics, which keep them in use.
	var profiles []api.Profile
	e.json(&profiles, "profile", "list")
	for _, p := range profiles {
		for name, d := range p.Devices {
			if d["type"] == "nic" {
				e.ok("profile", "device", "remove", p.Name, name)
			}
		}
	}
	var nets []struct{ Name string }
	e.json(&nets, "network", "list")
	for _, n := range nets {
		e.ok("network", "delete", n.Name)
	}
}

// needDriver skips only where the driver cannot run at all.
func needDriver(t *testing.T, driver string) {
	t.Helper()
	testutil.NeedRoot(t, driver+" pools")
	testutil.NeedCommand(t, map[string]string{"btrfs": "mkfs.btrfs", "zfs": "zpool"}[driver])
	if driver == "zfs" {
		if out, err := exec.Command("zpool", "list").CombinedOutput(); err != nil {
			t.Fatalf("zfs does not answer (start zfs-fuse): %s", out)
		}
	}
}

var drivers = []string{"dir", "btrfs", "zfs"}

// rootfs builds a small root filesystem tarball, zstd-compressed.
func rootfs(t *testing.T, extra ...*tar.Header) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./etc/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./sbin/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "./tmp/", Mode: 0o1777},
		{Typeflag: tar.TypeReg, Name: "./etc/hostname", Mode: 0o644, Size: 5},
		{Typeflag: tar.TypeReg, Name: "./sbin/init", Mode: 0o755, Size: 5, Uid: 0},
		{Typeflag: tar.TypeLink, Name: "./sbin/halt", Linkname: "./sbin/init"},
		{Typeflag: tar.TypeSymlink, Name: "./etc/localtime", Linkname: "/usr/share/zoneinfo/UTC"},
		{Typeflag: tar.TypeSymlink, Name: "./etc/escape", Linkname: "/etc"},
		{Typeflag: tar.TypeChar, Name: "./null", Mode: 0o666, Devmajor: 1, Devminor: 3},
	}
	for _, h := range append(hdrs, extra...) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size-1)))
			tw.Write([]byte("\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	return zb.Bytes()
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// instanceRoot is where the dir pool keeps an instance's root.
func instanceRoot(t *testing.T, e *env, name string) string {
	t.Helper()
	return volumeDir(t, e, func(tx *store.Tx) (string, string, error) {
		inst, err := tx.Instance(name)
		if err != nil {
			return "", "", err
		}
		return inst.Pool, inst.Volume, nil
	})
}

// volumeDir is the directory on the host of the volume that find names
// by pool and ID.
func volumeDir(t *testing.T, e *env, find func(tx *store.Tx) (pool, vol string, err error)) string {
	t.Helper()
	var root string
	err := openStore(t, e).View(func(tx *store.Tx) error {
		pool, vol, err := find(tx)
		if err != nil {
			return err
		}
		p, err := tx.Pool(pool)
		if err != nil {
			return err
		}
		root = filepath.Join(e.state, "pools", p.ID, "volumes", vol)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func openStore(t *testing.T, e *env) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(e.state, "silo.db"), store.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func statOf(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}
