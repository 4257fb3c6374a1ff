package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/internal/testutil"
)

// Busybox boots in a gVisor sandbox with runtime=runsc, and everything a
// runc instance does works on it: exec with its streams, exit codes and
// terminal, the console, limits, snapshots and a graceful stop.
func TestGVisor(t *testing.T) {
	testutil.NeedCommand(t, "runsc")
	e := bootEnv(t, "btrfs")
	// gVisor here has no network but loopback: a nic is refused.
	e.ok("create", "bb", "n", "-c", "runtime=runsc")
	e.fails(2, "has no network but loopback", "start", "n")
	e.launch("bb", "g", "-c", "runtime=runsc", "-c", "limits.memory=256MiB", "--no-network")
	// Its kernel is gVisor's, not the host's.
	if got := e.ok("exec", "g", "--", "dmesg"); !strings.Contains(got, "Starting gVisor") {
		t.Fatalf("dmesg in the instance does not tell of gVisor:\n%s", got)
	}
	st := e.status("g")
	if st.State != "running" || st.Memory <= 0 {
		t.Fatalf("list shows %+v", st)
	}
	if cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.Pid), "cmdline")); !strings.HasPrefix(string(cmd), "runsc-sandbox\x00") {
		t.Fatalf("the instance's process on the host is %q, not gVisor's sandbox", cmd)
	}
	if got := e.ok("exec", "g", "--", "hostname"); got != "g\n" {
		t.Fatalf("hostname %q", got)
	}
	if comm := e.ok("exec", "g", "--", "cat", "/proc/1/comm"); comm != "init\n" {
		t.Fatalf("PID 1 is %q", comm)
	}
	e.execStreams("g")
	// A terminal when asked for, none otherwise.
	if r := e.run("exec", "g", "--", "sh", "-c", "test -t 0"); r.code == 0 {
		t.Fatal("a terminal without -t")
	}
	if r := e.run("exec", "-t", "g", "--", "sh", "-c", "test -t 0 && echo term"); r.code != 0 || !strings.Contains(r.out, "term") {
		t.Fatalf("no terminal with -t: exit %d, %q", r.code, r.out)
	}
	// Through the API too, with its streams apart; and silo exec on a
	// terminal, which follows the window's size.
	s := e.serve()
	var stdout, stderr bytes.Buffer
	x, err := s.c.Exec(context.Background(), "g", api.InstanceExecPost{Command: []string{"sh", "-c", "cat; echo err >&2; exit 3"}},
		client.ExecStreams{Stdin: strings.NewReader("in\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(context.Background()); err != nil || code != 3 || stdout.String() != "in\n" || stderr.String() != "err\n" {
		t.Fatalf("exec through the API: %d, %v, %q, %q", code, err, stdout.String(), stderr.String())
	}
	e.shellOnTerminal("g")
	s.stop(t)
	// The console: busybox init runs a shell on it.
	if r := e.runIn([]byte("echo con$((6*7))sole\n"), "console", "g"); r.code != 0 || !strings.Contains(r.out, "con42sole") {
		t.Fatalf("console: exit %d, %q", r.code, r.out)
	}
	// Limits hold the whole sandbox, on the host; a process limit cannot.
	e.ok("config", "set", "g", "limits.memory=384MiB")
	if got := hostMemoryLimit(t, st.Pid); got != "402653184" {
		t.Fatalf("the sandbox's memory limit is %s, want 384 MiB", got)
	}
	e.fails(2, "limits.processes", "config", "set", "g", "limits.processes=50")
	// Snapshots, restore.
	e.ok("exec", "g", "--", "sh", "-c", "echo one > /etc/motd")
	e.ok("snapshot", "create", "g", "s1")
	e.ok("exec", "g", "--", "sh", "-c", "echo two > /etc/motd")
	e.ok("snapshot", "restore", "g", "s1", "--force")
	if got := e.ok("exec", "g", "--", "cat", "/etc/motd"); got != "one\n" {
		t.Fatalf("after a forced restore: %q", got)
	}
	e.ok("stop", "g")
	if st := e.status("g"); st.State != "stopped" {
		t.Fatalf("after stop: %+v", st)
	}
	if log := e.ok("console", "g", "--show-log"); !strings.Contains(log, "going down") {
		t.Fatalf("busybox did not shut down gracefully; its console said:\n%s", log)
	}
	e.ok("start", "g")
	e.ok("stop", "g", "--force")
	e.consistent()
}

// hostMemoryLimit reads the memory limit of the cgroup that process pid
// is in: from cgroup v1's memory controller, or from cgroup v2.
func hostMemoryLimit(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	var p string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		switch {
		case len(parts) != 3:
		case parts[1] == "memory":
			p = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		case parts[0] == "0" && p == "":
			p = filepath.Join("/sys/fs/cgroup", parts[2], "memory.max")
		}
	}
	v, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}
