package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/fsutil"
)

// testImage builds (or finds in the cache) an image with one of the hack/
// scripts and returns its path.
func testImage(t *testing.T, script string) string {
	t.Helper()
	images.Lock()
	defer images.Unlock()
	if p, ok := images.paths[script]; ok {
		return p
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", script)).Output()
	if err != nil {
		t.Fatalf("hack/%s: %v", script, err)
	}
	p := strings.TrimSpace(string(out))
	images.paths[script] = p
	return p
}

var images = struct {
	sync.Mutex
	paths map[string]string
}{paths: map[string]string{}}

// bootEnv is an env with the busybox image imported as "bb".
func bootEnv(t *testing.T, driver string) *env {
	e := newEnv(t, driver)
	e.ok("image", "import", testImage(t, "busybox-image.sh"), "--alias", "bb")
	return e
}

func (e *env) launch(image, name string, extra ...string) {
	e.t.Helper()
	e.ok(append(append([]string{"launch", image, name, "--wait"}, e.poolArgs()...), extra...)...)
}

// instanceState is what silo list says of an instance, in short.
type instanceState struct {
	Name, State string // State is running, stopped or absent
	Pid         int
	Memory      int64
	Processes   int64
	Started     time.Time
}

func (e *env) status(name string) instanceState {
	e.t.Helper()
	for _, i := range e.instances() {
		if i.Name == name {
			return instanceState{Name: name, State: strings.ToLower(i.Status), Pid: int(i.State.Pid),
				Memory: i.State.Memory.Usage, Processes: i.State.Processes, Started: i.State.StartedAt}
		}
	}
	return instanceState{Name: name, State: "absent"}
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
	}
}

// Busybox boots on every driver as a system container: init as PID 1,
// its own hostname and machine ID, tmpfs where systemd wants them, a
// writable cgroup tree; exec streams and returns exit codes; snapshots and
// restores work around a running instance.
func TestBootBusybox(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "a")
			e.launch("bb", "b")
			st := e.status("a")
			if st.State != "running" || st.Pid <= 0 || st.Memory <= 0 || st.Processes <= 0 || st.Started.IsZero() {
				t.Fatalf("list shows %+v", st)
			}
			if !strings.Contains(e.ok("info", "a"), "running") {
				t.Fatal("info does not say running")
			}
			if got := e.ok("exec", "a", "--", "hostname"); got != "a\n" {
				t.Fatalf("hostname %q", got)
			}
			idA, idB := e.ok("exec", "a", "--", "cat", "/etc/machine-id"), e.ok("exec", "b", "--", "cat", "/etc/machine-id")
			if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(idA) || idA == idB {
				t.Fatalf("machine IDs %q and %q: want two different ones", idA, idB)
			}
			if env := e.ok("exec", "a", "--", "cat", "/proc/1/environ"); !strings.Contains(env, "container=silo") {
				t.Fatalf("init's environment %q", env)
			}
			if comm := e.ok("exec", "a", "--", "cat", "/proc/1/comm"); comm != "init\n" {
				t.Fatalf("PID 1 is %q", comm)
			}
			mounts := e.ok("exec", "a", "--", "cat", "/proc/mounts")
			for _, want := range []string{"tmpfs /run tmpfs", "tmpfs /run/lock tmpfs", "tmpfs /tmp tmpfs", "devpts /dev/pts devpts"} {
				if !strings.Contains(mounts, want) {
					t.Fatalf("no %q in the mounts:\n%s", want, mounts)
				}
			}
			e.ok("exec", "a", "--", "mkdir", "/sys/fs/cgroup/pids/silo-test")
			e.execStreams("a")
			// A terminal when asked for, none otherwise.
			if r := e.run("exec", "a", "--", "tty"); r.code == 0 {
				t.Fatalf("tty without -t: %q", r.out)
			}
			if r := e.run("exec", "-t", "a", "--", "tty"); r.code != 0 || !strings.Contains(r.out, "/dev/pts/") {
				t.Fatalf("tty with -t: exit %d, %q", r.code, r.out)
			}
			// Snapshots of a running instance; restore and delete need --force.
			e.ok("exec", "a", "--", "sh", "-c", "echo one > /etc/motd")
			e.ok("snapshot", "create", "a", "s1")
			e.ok("exec", "a", "--", "sh", "-c", "echo two > /etc/motd")
			e.fails(5, "is running", "snapshot", "restore", "a", "s1")
			e.ok("snapshot", "restore", "a", "s1", "--force")
			if got := e.ok("exec", "a", "--", "cat", "/etc/motd"); got != "one\n" {
				t.Fatalf("after a forced restore: %q", got)
			}
			e.fails(5, "is running", "delete", "a")
			e.fails(5, "is running", "rename", "a", "c")
			e.fails(5, "already running", "start", "a")
			e.ok("delete", "a", "--force")
			if st := e.status("a"); st.State != "absent" {
				t.Fatalf("after delete --force: %+v", st)
			}
			e.consistent()
		})
	}
}

// execStreams checks that exec in instance name passes stdin, stdout,
// stderr, the exit code, the environment and the working directory.
func (e *env) execStreams(name string) {
	e.t.Helper()
	if r := e.runIn([]byte("from stdin"), "exec", name, "--", "cat"); r.out != "from stdin" || r.code != 0 {
		e.t.Fatalf("cat of stdin: %q, exit %d", r.out, r.code)
	}
	if r := e.run("exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 7"); r.code != 7 || r.out != "out\n" || r.err != "err\n" {
		e.t.Fatalf("exit %d, stdout %q, stderr %q; want 7, out, err", r.code, r.out, r.err)
	}
	if got := e.ok("exec", name, "--env", "FOO=bar", "--cwd", "/tmp", "--", "sh", "-c", "echo $FOO; pwd"); got != "bar\n/tmp\n" {
		e.t.Fatalf("env and cwd: %q", got)
	}
}

// A graceful stop asks init to shut down (busybox runs its shutdown
// actions); --timeout kills an init that does not listen; --force kills at
// once, on every driver. The console takes input while the instance runs,
// and its log stays readable after the stop.
func TestStop(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "a")
			// The console: busybox init runs a shell on it.
			if r := e.runIn([]byte("echo con$((6*7))sole\n"), "console", "a"); r.code != 0 || !strings.Contains(r.out, "con42sole") {
				t.Fatalf("console: exit %d, %q", r.code, r.out)
			}
			e.ok("stop", "a")
			if st := e.status("a"); st.State != "stopped" {
				t.Fatalf("after stop: %+v", st)
			}
			if log := e.ok("console", "a", "--show-log"); !strings.Contains(log, "going down") {
				t.Fatalf("busybox did not shut down gracefully; its console said:\n%s", log)
			}
			e.fails(5, "not running", "stop", "a")
			e.fails(5, "not running", "exec", "a", "--", "true")

			// An init that ignores the stop signal: sleep, as PID 1, has no handler.
			e.ok("config", "set", "a", "init=/bin/sleep 1000")
			e.ok("start", "a")
			begin := time.Now()
			e.ok("stop", "a", "--timeout", "1s")
			if d := time.Since(begin); d < time.Second {
				t.Fatalf("stop of an init that ignores it took %s, less than its timeout", d)
			}
			e.ok("start", "a")
			begin = time.Now()
			e.ok("stop", "a", "--force", "--timeout", "1m")
			if d := time.Since(begin); d > 20*time.Second {
				t.Fatalf("a forced stop took %s", d)
			}
			if st := e.status("a"); st.State != "stopped" {
				t.Fatalf("after a forced stop: %+v", st)
			}
			e.ok("config", "unset", "a", "init")
			e.ok("restart", "a")
			if st := e.status("a"); st.State != "running" {
				t.Fatalf("after restart: %+v", st)
			}
			e.consistent()
		})
	}
}

// An ephemeral instance goes when it stops, also when it is shut down from
// inside; a restart or a reboot from inside keeps it.
func TestEphemeral(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "eph", "--ephemeral")
			e.ok("restart", "eph")
			if st := e.status("eph"); st.State != "running" {
				t.Fatalf("after restart: %+v", st)
			}
			// A reboot from inside boots it again, and keeps it.
			pid := e.status("eph").Pid
			e.run("exec", "eph", "--", "reboot") // killed with the rest of the container
			eventually(t, "the instance runs again after a reboot", func() bool {
				st := e.status("eph")
				return st.State == "running" && st.Pid != pid
			})
			e.ok("wait", "eph")
			e.run("exec", "eph", "--", "poweroff")
			eventually(t, "the ephemeral instance is deleted after poweroff", func() bool { return e.status("eph").State == "absent" })
			e.launch("bb", "eph2", "--ephemeral")
			e.ok("stop", "eph2")
			if st := e.status("eph2"); st.State != "absent" {
				t.Fatalf("after stop: %+v", st)
			}
			e.consistent()
		})
	}
}

// limits.* are applied at start, changed live, and seen from inside.
func TestLimits(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "a", "-c", "limits.cpu=1", "-c", "limits.memory=128MiB", "-c", "limits.processes=50")
			check := func(cpus, mem, pids string) {
				t.Helper()
				if got := e.ok("exec", "a", "--", "nproc"); got != cpus+"\n" {
					t.Fatalf("nproc %q, want %s", got, cpus)
				}
				got := e.ok("exec", "a", "--", "sh", "-c",
					"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
				if got != mem+"\n" {
					t.Fatalf("memory limit %q, want %s", got, mem)
				}
				got = e.ok("exec", "a", "--", "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
				if got != pids+"\n" {
					t.Fatalf("pids limit %q, want %s", got, pids)
				}
			}
			check("1", "134217728", "50")
			e.ok("config", "set", "a", "limits.memory=256MiB", "limits.processes=80")
			check("1", "268435456", "80")
			if n := runtimeNumCPU(t); n > 1 {
				e.ok("config", "unset", "a", "limits.cpu")
				check(strconv.Itoa(n), "268435456", "80")
			}
			e.fails(2, "limits.memory", "config", "set", "a", "limits.memory=lots")
			e.fails(2, "unknown config key", "config", "set", "a", "limits.disk=1")
			e.fails(2, "CPUs asked", "launch", "bb", "b", "-c", "limits.cpu=4096")
		})
	}
}

func runtimeNumCPU(t *testing.T) int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// 20 instances started at once all run, on every driver. (They are made
// one after the other: zfs-fuse, which the tests run ZFS on, can hang when
// clones are made and mounted while containers start on it; creates at
// once are TestConcurrentCommands' part.)
func TestTwentyAtOnce(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			for i := range 20 {
				e.ok(append([]string{"create", "bb", fmt.Sprintf("c%d", i)}, e.poolArgs()...)...)
			}
			var wg sync.WaitGroup
			errs := make(chan string, 20)
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if r := e.run("start", fmt.Sprintf("c%d", i), "--wait"); r.code != 0 {
						errs <- r.err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("start: %s", err)
			}
			running := 0
			for _, i := range e.instances() {
				if i.StatusCode == api.Running {
					running++
				}
			}
			if running != 20 {
				t.Fatalf("%d of 20 running", running)
			}
			e.consistent()
		})
	}
}

// The state stays true when the container dies on its own, when its
// monitor is killed, and when a start is killed.
func TestStateStaysTrue(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a")
	syscall.Kill(e.status("a").Pid, syscall.SIGKILL)
	eventually(t, "the killed instance shows stopped", func() bool { return e.status("a").State == "stopped" })

	// Its monitor killed, then the container: the next command sees it.
	e.ok("start", "a", "--wait")
	mon := monitorOf(t, e.status("a").Pid)
	syscall.Kill(mon, syscall.SIGKILL)
	if st := e.status("a"); st.State != "running" {
		t.Fatalf("with its monitor killed: %+v", st)
	}
	e.ok("stop", "a", "--force")
	if st := e.status("a"); st.State != "stopped" {
		t.Fatalf("stopped without a monitor: %+v", st)
	}
	e.ok("start", "a", "--wait")
	syscall.Kill(monitorOf(t, e.status("a").Pid), syscall.SIGKILL)
	syscall.Kill(e.status("a").Pid, syscall.SIGKILL)
	eventually(t, "the instance whose monitor died shows stopped", func() bool { return e.status("a").State == "stopped" })
	e.launch("bb", "eph", "--ephemeral")
	syscall.Kill(monitorOf(t, e.status("eph").Pid), syscall.SIGKILL)
	syscall.Kill(e.status("eph").Pid, syscall.SIGKILL)
	eventually(t, "an ephemeral instance whose monitor died is deleted", func() bool { return e.status("eph").State == "absent" })

	// A start killed before and after it handed over to the monitor.
	for _, at := range []struct{ step, want string }{{"bundled", "stopped"}, {"spawned", "running"}} {
		e.extra = []string{"SILO_CRASH_AT=start/" + at.step}
		if r := e.run("start", "a"); r.signal != syscall.SIGKILL {
			t.Fatalf("start with a crash at %s: exit %d, %s", at.step, r.code, r.err)
		}
		e.extra = nil
		if st := e.status("a"); st.State != at.want {
			t.Fatalf("start killed once %s: %+v, want %s", at.step, st, at.want)
		}
		e.ok("delete", "--force", "a")
		e.ok("create", "bb", "a")
	}
	e.consistent()
}

// monitorOf finds the monitor of an instance: the parent of its init.
func monitorOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, _ := strconv.Atoi(fields[1])
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
	if !strings.HasPrefix(string(comm), "silo-monitor") {
		t.Fatalf("the parent of init is %q, not a monitor", comm)
	}
	return ppid
}

// A missing OCI runtime, or init, is one clear line, and nothing is left
// running.
func TestMissingRuntime(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "a")
	e.extra = []string{"PATH=/nonexistent"}
	e.fails(7, `OCI runtime "runc" not found`, "start", "a")
	e.extra = nil
	e.ok("config", "set", "a", "runtime=/nonexistent/crun")
	e.fails(7, `OCI runtime "/nonexistent/crun" not found`, "start", "a")
	e.ok("config", "unset", "a", "runtime")
	e.ok("config", "set", "a", "init=/sbin/nope")
	e.fails(1, `"/sbin/nope"`, "start", "a")
	if st := e.status("a"); st.State != "stopped" {
		t.Fatalf("after failed starts: %+v", st)
	}
	e.consistent()
}

// Debian with systemd boots to running (or degraded) on every driver, two
// clones get their own machine IDs, and a graceful stop halts systemd.
func TestBootDebian(t *testing.T) {
	img := testImage(t, "debian-image.sh")
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.ok("image", "import", img, "--alias", "debian")
			e.launch("debian", "d1")
			e.launch("debian", "d2")
			if got := e.run("exec", "d1", "--", "systemctl", "is-system-running"); got.out != "running\n" && got.out != "degraded\n" {
				t.Fatalf("systemd is %q", got.out)
			}
			// Unprivileged on every pool: systemd runs in
			// its own cgroup tree, as the container's root.
			if e.info("d1").Privileged {
				t.Fatal("a default Debian instance is privileged")
			}
			dirs := []string{"/sys/fs/cgroup/system.slice"}
			if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil { // hybrid
				dirs = []string{"/sys/fs/cgroup/unified/system.slice", "/sys/fs/cgroup/systemd/system.slice"}
			}
			if got := e.ok(append([]string{"exec", "d1", "--", "stat", "-c", "%U"}, dirs...)...); got != strings.Repeat("root\n", len(dirs)) {
				t.Fatalf("owners of systemd's cgroups %v inside: %q", dirs, got)
			}
			id1, id2 := e.ok("exec", "d1", "--", "cat", "/etc/machine-id"), e.ok("exec", "d2", "--", "cat", "/etc/machine-id")
			if id1 == id2 || len(id1) != 33 {
				t.Fatalf("machine IDs %q and %q", id1, id2)
			}
			if got := e.ok("exec", "d2", "--", "hostname"); got != "d2\n" {
				t.Fatalf("hostname %q", got)
			}
			e.ok("stop", "d1", "--timeout", "60s")
			if log := e.ok("console", "d1", "--show-log"); !strings.Contains(log, "Reached target") {
				t.Fatalf("the console log shows no systemd shutdown:\n%s", log)
			}
			e.ok("stop", "d2", "--timeout", "60s")
			e.consistent()
		})
	}
}

// A running Debian instance restarts, and reboots from inside: systemd
// comes back each time, and the instance's pool stays mounted (a
// shutdown inside must not take the pool with it). On a btrfs loop pool,
// the one a shutdown could unmount; the driver plays no other part.
func TestRestartDebian(t *testing.T) {
	img := testImage(t, "debian-image.sh")
	e := newEnv(t, "btrfs")
	e.ok("image", "import", img, "--alias", "debian")
	e.launch("debian", "d")
	booted := func(when string) {
		t.Helper()
		e.ok("wait", "d")
		if got := e.run("exec", "d", "--", "systemctl", "is-system-running", "--wait"); got.out != "running\n" && got.out != "degraded\n" {
			t.Fatalf("%s: systemd is %q (%s)", when, got.out, got.err)
		}
		if m, err := fsutil.IsMountPoint(poolMountDir(t, e, e.pool)); !m || err != nil {
			t.Fatalf("%s: the pool is not mounted (%v)", when, err)
		}
	}
	booted("launched")
	e.ok("restart", "d", "--timeout", "60s")
	booted("after restart")
	pid := e.status("d").Pid
	e.run("exec", "d", "--", "systemctl", "reboot") // may be killed with the rest of the container
	eventually(t, "the instance runs again after a reboot from inside", func() bool {
		st := e.status("d")
		return st.State == "running" && st.Pid != pid
	})
	booted("after a reboot from inside")
	e.ok("snapshot", "create", "d", "s1")
	e.ok("stop", "d", "--timeout", "60s")
	e.consistent()
}
