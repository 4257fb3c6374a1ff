package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/silo-dev/silo/internal/idmap"
)

// security.nesting lets an unprivileged Debian instance run containers of
// its own. With silo's static binary and the host's runc pushed in (the
// image has runc's one library, libseccomp, for systemd), it launches
// busybox inside: unprivileged on a pool on a filesystem of its own (a
// tmpfs), privileged on its default pool, on which an unprivileged one is
// refused with a line that says why. Without the key, the kernel refuses
// an unprivileged inner instance its /proc; a privileged instance may nest
// too, with a warning.
func TestNesting(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	silo := filepath.Join(t.TempDir(), "silo")
	build := exec.Command("make", "-s", "build", "BIN="+silo) // static, as users get it
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	e := newEnv(t, "dir")
	e.ok("image", "import", testImage(t, "debian-image.sh"), "--alias", "debian")
	busybox := testImage(t, "busybox-image.sh")
	e.fails(2, "neither true nor false", "create", "debian", "bad", "-c", "security.nesting=yes")

	// inside runs the inner silo in instance name.
	inside := func(name string, args ...string) string {
		t.Helper()
		return e.ok(append([]string{"exec", name, "--", "silo"}, args...)...)
	}
	// nest launches name with config and pushes in what nesting takes;
	// it returns what the launch said on stderr.
	nest := func(name string, config ...string) string {
		t.Helper()
		r := e.run(append([]string{"launch", "debian", name, "--wait"}, config...)...)
		if r.code != 0 {
			t.Fatalf("launch %s: exit %d: %s", name, r.code, r.err)
		}
		e.ok("file", "push", "--mode", "0755", silo, name+"/usr/local/bin/silo")
		e.ok("file", "push", "--mode", "0755", runc, name+"/usr/sbin/runc")
		e.ok("file", "push", busybox, name+"/root/busybox.tar.gz")
		inside(name, "image", "import", "/root/busybox.tar.gz", "--alias", "bb")
		e.ok("exec", name, "--", "mkdir", "/tmp/pool")
		inside(name, "pool", "create", "own", "--source", "/tmp/pool")
		return r.err
	}

	nest("outer", "-c", "security.nesting=true")
	// The outer image has no dnsmasq: the inner instances have no network.
	inside("outer", "launch", "bb", "u", "--pool", "own", "-c", "security.idmap.isolated=true", "--wait", "--no-network")
	if got := inside("outer", "exec", "u", "--", "hostname"); got != "u\n" {
		t.Fatalf("hostname of the inner instance: %q", got)
	}
	// Its root is an ID of the outer instance's range, neither the
	// outer's root nor the host's.
	inner, _, ok := idmap.Parse(inside("outer", "exec", "u", "--", "cat", "/proc/self/uid_map"))
	outer, size, _ := idmap.Parse(e.ok("exec", "outer", "--", "cat", "/proc/self/uid_map"))
	if !ok || inner == 0 || outer == 0 {
		t.Fatalf("the inner instance's root is %d in the outer instance, whose root is %d on the host", inner, outer)
	}
	if !hostProcessOf(t, outer+inner) {
		t.Fatalf("no process of the host runs as %d, the inner instance's root", outer+inner)
	}
	// No unprivileged instance whose map the outer range cannot hold,
	// on any pool.
	for _, pool := range []string{"default", "own"} {
		e.fails(2, fmt.Sprintf("maps IDs 0-%d only", size-1),
			"exec", "outer", "--", "silo", "launch", "bb", "too-wide-"+pool, "--pool", pool, "--no-network")
	}
	// A privileged one runs there: root of the outer instance's namespace.
	inside("outer", "launch", "bb", "p", "-c", "security.privileged=true", "--wait", "--no-network")
	if got := inside("outer", "exec", "p", "--", "cat", "/proc/1/comm"); got != "init\n" {
		t.Fatalf("PID 1 of the privileged inner instance is %q", got)
	}
	inside("outer", "stop", "u")
	inside("outer", "stop", "p")

	nest("plain")
	r := e.run("exec", "plain", "--", "silo", "launch", "bb", "u", "--pool", "own", "-c", "security.idmap.isolated=true", "--wait", "--no-network")
	if r.code == 0 || !strings.Contains(r.err, "mount proc:/proc") || !strings.Contains(r.err, "operation not permitted") {
		t.Fatalf("an instance without nesting launched one of its own: exit %d, %s", r.code, r.err)
	}

	// A privileged instance may nest too, with a warning: its root, the
	// host's, then runs unprivileged instances of its own on its
	// default pool.
	if warned := nest("priv", "-c", "security.privileged=true", "-c", "security.nesting=true"); !strings.Contains(warned, "security.nesting on a privileged instance") {
		t.Fatalf("no warning for a privileged instance that nests: %q", warned)
	}
	inside("priv", "launch", "bb", "u", "--wait", "--no-network")
	if _, _, ok := idmap.Parse(inside("priv", "exec", "u", "--", "cat", "/proc/self/uid_map")); !ok {
		t.Fatal("the inner instance of the privileged one is privileged")
	}
	inside("priv", "stop", "u")

	for _, name := range []string{"outer", "plain", "priv"} {
		e.ok("stop", name, "--timeout", "60s")
	}
	e.consistent()
}

// hostProcessOf says whether a process of the host runs as uid.
func hostProcessOf(t *testing.T, uid uint32) bool {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/status")
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatUint(uint64(uid), 10)
	for _, d := range dirs {
		status, _ := os.ReadFile(d)
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok && len(strings.Fields(v)) > 0 && strings.Fields(v)[0] == want {
				return true
			}
		}
	}
	return false
}
