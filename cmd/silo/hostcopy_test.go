package main

import (
	"context"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

// servedPair joins h1 and h2 as twoHosts does, has h2 serve on h2Addr,
// and gives h1 the remote h2; it returns h2's server.
func servedPair(t *testing.T, h1, h2 *env) *apiServer {
	join(t, h1, h2)
	h2.ok("config", "set", "core.https_address", h2Addr)
	s := h2.serve()
	h1.ok("remote", "add", "h2", "https://"+h2Addr, "--token", h2.token("h1"))
	return s
}

// snapshotsOf lists the snapshots of instance name on e, as name:uuid.
func snapshotsOf(e *env, name string) []string {
	e.t.Helper()
	var snaps []api.InstanceSnapshot
	e.json(&snaps, "snapshot", "list", name)
	var out []string
	for _, s := range snaps {
		out = append(out, s.Name+":"+s.UUID)
	}
	return out
}

// streamIDOf is the driver's stream ID of snapshot snap of name on e.
func streamIDOf(e *env, name, snap string) string {
	e.t.Helper()
	eng, err := engine.Open(context.Background(), e.state)
	if err != nil {
		e.t.Fatal(err)
	}
	defer eng.Close()
	id, err := eng.SnapshotStreamID(context.Background(), name, snap)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// names is the part before the colon of each of snaps.
func names(snaps []string) []string {
	var out []string
	for _, s := range snaps {
		n, _, _ := strings.Cut(s, ":")
		out = append(out, n)
	}
	return out
}

// makeLineage gives instance web on e two snapshots: s1 with /etc/v
// "one" and /etc/gone, s2 with /etc/v "two" and no /etc/gone; its head
// has /etc/v "head".
func makeLineage(e *env) {
	e.t.Helper()
	e.sh("web", "echo one >/etc/v; echo x >/etc/gone; sync")
	e.ok("snapshot", "create", "web", "s1")
	e.sh("web", "echo two >/etc/v; rm /etc/gone; sync")
	e.ok("snapshot", "create", "web", "s2")
	e.sh("web", "echo head >/etc/v; sync")
}

// checkLineage checks, on e, that instance name holds what makeLineage
// made, snapshots included, and leaves it running.
func checkLineage(e *env, name string) {
	e.t.Helper()
	if e.status(name).State != "running" {
		e.ok("start", name)
	}
	if got := e.sh(name, "cat /etc/v; ls /etc/gone 2>&1 || true"); !strings.HasPrefix(got, "head\n") || !strings.Contains(got, "No such file") {
		e.t.Fatalf("%s's head: %q", name, got)
	}
	e.ok(append([]string{"copy", name + "/s1", "chk"}, e.poolArgs()...)...)
	e.ok("start", "chk")
	if got := e.sh("chk", "cat /etc/v /etc/gone"); got != "one\nx\n" {
		e.t.Fatalf("%s's snapshot s1: %q", name, got)
	}
	e.ok("delete", "--force", "chk")
}

// Copies between hosts carry the snapshots, their names and UUIDs, by
// the driver's streams when both pools have one driver; a refresh then
// moves only the change, adds the new snapshot and keeps the target's
// own; a move carries a running instance, which starts on the other side.
func TestCopyBetweenHosts(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			h1, h2 := bootEnv(t, driver), newEnv(t, driver)
			servedPair(t, h1, h2)
			h1.launch("bb", "web")
			makeLineage(h1)
			h1.ok(append([]string{"copy", "web", "h2:web"}, h2.poolArgs()...)...)
			if got, want := snapshotsOf(h2, "web"), snapshotsOf(h1, "web"); !slices.Equal(got, want) {
				t.Fatalf("snapshots on h2: %v, on h1: %v", got, want)
			}
			checkLineage(h2, "web")
			h1.fails(4, "already exists", append([]string{"copy", "web", "h2:web"}, h2.poolArgs()...)...)

			// A refresh after a 1 MB change moves about that much.
			h2.ok("stop", "web", "--force")
			h2.ok("snapshot", "create", "web", "mine")
			h1.sh("web", "dd if=/dev/urandom of=/big bs=1024 count=1024 2>/dev/null; echo three >/etc/v; sync")
			h1.ok("snapshot", "create", "web", "s3")
			out := h1.ok("copy", "web", "h2:web", "--refresh")
			m := regexp.MustCompile(`(\d+) bytes sent`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("copy --refresh said: %q", out)
			}
			if n, _ := strconv.Atoi(m[1]); n < 1<<20 || n > 3<<20 {
				t.Fatalf("a refresh after a 1 MB change sent %d bytes", n)
			}
			if got := names(snapshotsOf(h2, "web")); !slices.Equal(got, []string{"s1", "s2", "mine", "s3"}) {
				t.Fatalf("snapshots on h2 after the refresh: %v", got)
			}
			// The driver's streams carried it: h2's s3 holds what h1's does
			// as the driver names it, from which the next refresh starts.
			if a, b := streamIDOf(h1, "web", "s3"), streamIDOf(h2, "web", "s3"); a == "" || a != b {
				t.Fatalf("the refresh did not go by the driver's streams: s3 is %q on h1, %q on h2", a, b)
			}
			h2.ok("start", "web")
			sum := "md5sum </big; cat /etc/v"
			if got, want := h2.sh("web", sum), h1.sh("web", sum); got != want || !strings.HasSuffix(got, "three\n") {
				t.Fatalf("after the refresh h2 has %q, h1 %q", got, want)
			}

			// A running instance moves, and runs on the other side.
			h1.ok(append([]string{"move", "web", "h2:moved"}, h2.poolArgs()...)...)
			if h1.status("web").State != "absent" {
				t.Fatal("web is still on h1 after its move")
			}
			if s := h2.status("moved"); s.State != "running" {
				t.Fatalf("moved on h2 is %s", s.State)
			}
			if got := names(snapshotsOf(h2, "moved")); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
				t.Fatalf("snapshots of the moved instance: %v", got)
			}
			if got := h2.sh("moved", "cat /etc/v"); got != "three\n" {
				t.Fatalf("the moved instance's /etc/v: %q", got)
			}
			// And back, from the remote to here.
			h1.ok(append([]string{"move", "h2:moved", "local:web"}, h1.poolArgs()...)...)
			if h2.status("moved").State != "absent" || h1.status("web").State != "running" {
				t.Fatal("the move back left the instance on h2, or not running here")
			}
			h1.consistent()
			h2.consistent()
		})
	}
}

// Between pools of two drivers the portable stream carries the copy,
// and the refresh, either way.
func TestCopyBetweenHostsAcrossDrivers(t *testing.T) {
	h1, h2 := bootEnv(t, "btrfs"), newEnv(t, "dir")
	servedPair(t, h1, h2)
	h1.launch("bb", "web")
	makeLineage(h1)
	h1.ok("copy", "web", "h2:web")
	if got, want := snapshotsOf(h2, "web"), snapshotsOf(h1, "web"); !slices.Equal(got, want) {
		t.Fatalf("snapshots on h2: %v, on h1: %v", got, want)
	}
	checkLineage(h2, "web")
	// From the remote, back to a btrfs pool here.
	h1.ok("copy", "h2:web", "local:back", "--pool", h1.pool)
	checkLineage(h1, "back")
	// A refresh from the remote: the change on h2 comes back.
	h2.sh("web", "echo again >/etc/v; sync")
	h2.ok("snapshot", "create", "web", "s3")
	h1.ok("stop", "back", "--force")
	h1.ok("copy", "h2:web", "local:back", "--refresh")
	if got := names(snapshotsOf(h1, "back")); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Fatalf("snapshots of back after the refresh: %v", got)
	}
	h1.ok("start", "back")
	if got := h1.sh("back", "cat /etc/v"); got != "again\n" {
		t.Fatalf("back's /etc/v after the refresh: %q", got)
	}
	h1.consistent()
	h2.consistent()
}

// cuttingProxy forwards each connection made to addr in network
// namespace ns to h2, and cuts it once the client has sent limit bytes.
func cuttingProxy(t *testing.T, ns, addr string, limit int64) {
	serveEach(listenIn(t, ns, addr), func(c net.Conn) {
		s, err := dialIn(ns, "tcp", h2Addr)
		if err != nil {
			return
		}
		defer s.Close()
		go io.Copy(c, s)
		io.CopyN(s, c, limit)
	})
}

// A copy or a move whose stream is cut leaves the source whole and the
// target without the instance, and nothing of it on the target's pool.
func TestMoveCutStream(t *testing.T) {
	h1, h2 := bootEnv(t, "btrfs"), newEnv(t, "btrfs")
	servedPair(t, h1, h2)
	proxy := net.JoinHostPort("198.51.100.1", "9443")
	cuttingProxy(t, h1.netns, proxy, 4<<20)
	h1.ok("remote", "add", "cut", "https://"+proxy, "--token", h2.token("cut"))
	h1.launch("bb", "web")
	h1.sh("web", "dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null; sync")
	h1.ok("snapshot", "create", "web", "s1")
	sum := h1.sh("web", "md5sum </big")
	for _, cmd := range []string{"copy", "move"} {
		r := h1.run(cmd, "web", "cut:web", "--pool", h2.pool)
		if r.code == 0 || !strings.Contains(r.err, "/1.0/instances") {
			t.Fatalf("%s through a cut stream: exit %d: %s", cmd, r.code, r.err)
		}
		if h2.status("web").State != "absent" {
			t.Fatalf("a cut %s left web on h2", cmd)
		}
		h2.consistent()
		if s := h1.status("web"); s.State != "running" {
			t.Fatalf("after a cut %s web on h1 is %s", cmd, s.State)
		}
		if got := h1.sh("web", "md5sum </big"); got != sum {
			t.Fatalf("after a cut %s web's /big is %q, was %q", cmd, got, sum)
		}
		if got := names(snapshotsOf(h1, "web")); !slices.Equal(got, []string{"s1"}) {
			t.Fatalf("after a cut %s web's snapshots are %v", cmd, got)
		}
	}
	// The same move, uncut, goes through.
	h1.ok("move", "web", "h2:web", "--pool", h2.pool)
	if got := h2.sh("web", "md5sum </big"); got != sum {
		t.Fatalf("moved, web's /big is %q, was %q", got, sum)
	}
	h1.consistent()
}

// A server killed in the middle of receiving a copy or a refresh (by the
// driver's streams, a zfs one on a fork) leaves what its next start
// undoes: no half-made instance, and a refreshed one as it was. The copy's command fails with the server gone, and the
// source is untouched; once the server is back, the same copy works.
func TestCopyServerKilled(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) { copyServerKilled(t, driver) })
	}
}

func copyServerKilled(t *testing.T, driver string) {
	h1, h2 := newEnv(t, driver), newEnv(t, driver)
	s := servedPair(t, h1, h2)
	s.stop(t)
	h1.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	h1.ok(append([]string{"create", "tiny", "web", "--no-network"}, h1.poolArgs()...)...)
	h1.ok("snapshot", "create", "web", "s1")
	copyTo := append([]string{"copy", "web", "h2:web"}, h2.poolArgs()...)

	killedAt := func(step string, args ...string) {
		t.Helper()
		s.stop(t)
		s = h2.serve("SILO_CRASH_AT=" + step)
		if r := h1.run(args...); r.code == 0 {
			t.Fatalf("%v with h2's server killed at %s: %s", args, step, r.out)
		}
		<-s.done
		if ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the server was not killed at %s: %v\n%s", step, s.cmd.ProcessState, s.out)
		}
		s = h2.serve() // recovers before it serves
		h1.consistent()
		h2.consistent()
	}
	killedAt("copy/received", copyTo...)
	if h2.status("web").State != "absent" {
		t.Fatal("a copy whose receiver was killed left web on h2")
	}
	if got := names(snapshotsOf(h1, "web")); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("web's snapshots on h1 after the killed copy: %v", got)
	}
	h1.ok(copyTo...)

	h1.ok("file", "push", writeFile(t, []byte("new\n")), "web/etc/v")
	h1.ok("snapshot", "create", "web", "s2")
	killedAt("refresh/snapshots", "copy", "web", "h2:web", "--refresh")
	if got := names(snapshotsOf(h2, "web")); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("web's snapshots on h2 after the killed refresh: %v", got)
	}
	h1.ok("copy", "web", "h2:web", "--refresh")
	if got := names(snapshotsOf(h2, "web")); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("web's snapshots on h2 after the refresh: %v", got)
	}
	if got := h2.ok("file", "pull", "web/etc/v", "-"); got != "new\n" {
		t.Fatalf("web's /etc/v on h2 after the refresh: %q", got)
	}
	if a, b := streamIDOf(h1, "web", "s2"), streamIDOf(h2, "web", "s2"); a == "" || a != b {
		t.Fatalf("the refresh did not go by the driver's streams: s2 is %q on h1, %q on h2", a, b)
	}
}
