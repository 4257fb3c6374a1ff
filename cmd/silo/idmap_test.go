package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/store"
)

// uidMap is what /proc/self/uid_map reads in instance name, in fields.
func (e *env) uidMap(name string) string {
	e.t.Helper()
	return strings.Join(strings.Fields(e.ok("exec", name, "--", "cat", "/proc/self/uid_map")), " ")
}

// info is instance name as silo info --format json shows it.
func (e *env) info(name string) api.Instance {
	e.t.Helper()
	var i api.Instance
	e.apiJSON(&i, "info", name)
	return i
}

// idmapMounts counts the idmapped roots mounted for the runs of the
// test's state directory.
func (e *env) idmapMounts() int {
	e.t.Helper()
	sum := sha256.Sum256([]byte(e.state))
	base := "/run/silo/" + hex.EncodeToString(sum[:6]) + "/"
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], base) && strings.HasSuffix(f[4], "/rootfs") {
			n++
		}
	}
	return n
}

// switchAndBack restarts instance name privileged, runs privileged (when
// not nil) and touches /root/privileged there, then restarts it
// unprivileged again, under the map whose uid_map reads shared.
func (e *env) switchAndBack(name, shared string, privileged func()) {
	e.t.Helper()
	e.ok("config", "set", name, "security.privileged=true")
	e.ok("restart", name)
	if got := e.uidMap(name); got != "0 0 4294967295" {
		e.t.Fatalf("privileged: uid_map %q", got)
	}
	if i := e.info(name); !i.Privileged || len(i.Idmap) != 0 {
		e.t.Fatalf("info of a privileged instance: %v, %+v", i.Privileged, i.Idmap)
	}
	if privileged != nil {
		privileged()
	}
	e.ok("exec", name, "--", "touch", "/root/privileged")
	e.ok("config", "unset", name, "security.privileged")
	e.ok("restart", name)
	if got := e.uidMap(name); got != shared {
		e.t.Fatalf("unprivileged again: uid_map %q", got)
	}
}

// A default instance is unprivileged on every pool that can idmap: root
// inside is root's subordinate range outside; files it makes are on disk
// with the IDs they have inside (volumes stay unshifted), as are files
// pushed with --uid and --gid; it switches to privileged and back with a
// restart; and its idmapped root goes when it stops.
func TestUnprivileged(t *testing.T) {
	root, err := idmap.Root(idmap.SubUID, idmap.SubGID)
	if err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("0 %d %d", root.UID, root.Size)
	for _, driver := range []string{"dir", "btrfs"} {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "u")
			if got := e.uidMap("u"); got != shared {
				t.Fatalf("uid_map inside %q, want %q", got, shared)
			}
			i := e.info("u")
			want := []api.IdmapEntry{{IsUID: true, HostID: int64(root.UID), Range: int64(root.Size)},
				{IsGID: true, HostID: int64(root.GID), Range: int64(root.Size)}}
			if i.Privileged || fmt.Sprint(i.Idmap) != fmt.Sprint(want) {
				t.Fatalf("info: privileged %v, idmap %+v; want %+v", i.Privileged, i.Idmap, want)
			}
			if out := e.ok("info", "u"); !strings.Contains(out, fmt.Sprintf("uid %d-%d as 0-%d", root.UID, int64(root.UID)+int64(root.Size)-1, root.Size-1)) {
				t.Fatalf("info shows no map:\n%s", out)
			}
			if e.idmapMounts() != 1 {
				t.Fatalf("%d idmapped roots mounted, want 1", e.idmapMounts())
			}
			e.ok("exec", "u", "--", "sh", "-c", "touch /root/made && mkdir /root/d && chown 1000:1001 /root/d")
			local := writeFile(t, []byte("pushed\n"))
			e.ok("file", "push", local, "u/etc/pushed", "--uid", "1234", "--gid", "2345")
			if got := e.ok("exec", "u", "--", "stat", "-c", "%u %g", "/root/made", "/root/d", "/etc/pushed"); got != "0 0\n1000 1001\n1234 2345\n" {
				t.Fatalf("owners inside: %q", got)
			}
			ownersOn(t, "on disk", instanceRoot(t, e, "u"), map[string][2]uint32{"root/made": {0, 0}, "root/d": {1000, 1001}, "etc/pushed": {1234, 2345}})
			if got := e.ok("file", "pull", "u/etc/pushed", "-"); got != "pushed\n" {
				t.Fatalf("pulled %q", got)
			}

			e.switchAndBack("u", shared, nil)
			if got := e.ok("exec", "u", "--", "stat", "-c", "%u", "/root/privileged", "/root/d"); got != "0\n1000\n" {
				t.Fatalf("owners after the switches: %q", got)
			}
			e.ok("stop", "u", "--force")
			if n := e.idmapMounts(); n != 0 {
				t.Fatalf("%d idmapped roots left mounted after the stop", n)
			}
			e.consistent()
		})
	}
}

// Isolated instances get ranges no other instance shares; a base asked
// for that overlaps one, or leaves root's range, is one clear line and
// makes nothing.
func TestIsolated(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "i1", "-c", "security.idmap.isolated=true")
	e.launch("bb", "i2", "-c", "security.idmap.isolated=true", "-c", "security.idmap.size=70000")
	e.ok("copy", "i1", "i3")
	e.ok("start", "i3")
	type span struct{ lo, hi int64 }
	var spans []span
	for _, name := range []string{"i1", "i2", "i3"} {
		m := e.info(name).Idmap
		if len(m) != 2 || m[0].HostID != m[1].HostID || m[0].HostID < idmap.DefaultBase {
			t.Fatalf("%s: idmap %+v", name, m)
		}
		if got, want := e.uidMap(name), fmt.Sprintf("0 %d %d", m[0].HostID, m[0].Range); got != want {
			t.Fatalf("%s: uid_map inside %q, want %q", name, got, want)
		}
		s := span{m[0].HostID, m[0].HostID + m[0].Range}
		for _, o := range spans {
			if s.lo < o.hi && o.lo < s.hi {
				t.Fatalf("%s's range %v overlaps %v", name, s, o)
			}
		}
		spans = append(spans, s)
	}
	if spans[1].hi-spans[1].lo != 70000 {
		t.Fatalf("i2's range %v: want 70000 IDs", spans[1])
	}
	taken := fmt.Sprint(spans[0].lo + 10)
	e.fails(2, "overlaps the isolated range", "create", "bb", "x", "-c", "security.idmap.isolated=true", "-c", "security.idmap.base="+taken)
	e.fails(2, "not within root's subordinate range", "create", "bb", "x", "-c", "security.idmap.isolated=true", "-c", "security.idmap.base=1000")
	e.fails(2, "security.idmap.isolated=true", "create", "bb", "x", "-c", "security.idmap.base=2000000")
	e.fails(2, "neither true nor false", "create", "bb", "x", "-c", "security.idmap.isolated=yes")
	if st := e.status("x"); st.State != "absent" {
		t.Fatalf("a refused create left %+v", st)
	}
	e.fails(2, "overlaps the isolated range", "config", "set", "i2", "security.idmap.base="+taken)
	if cfg := e.info("i2").Config; cfg["security.idmap.base"] != "" {
		t.Fatalf("a refused config set changed the config: %v", cfg)
	}
	// A range stays taken while its instance runs on it, whatever its
	// config says meanwhile (the change waits for its next start).
	e.ok("config", "set", "i1", "security.idmap.isolated=false")
	e.launch("bb", "i4", "-c", "security.idmap.isolated=true")
	if m := e.info("i4").Idmap[0]; m.HostID < spans[0].hi && spans[0].lo < m.HostID+m.Range {
		t.Fatalf("i4 was given %+v, which i1 still runs on (%v)", m, spans[0])
	}
	e.consistent()
}

// shiftedBases counts the image bases shifted for a map on pool.
func (e *env) shiftedBases(pool string) int {
	e.t.Helper()
	n := 0
	st := openStore(e.t, e)
	err := st.View(func(tx *store.Tx) error {
		imgs, err := tx.Images()
		for _, img := range imgs {
			n += len(img.Shifted[pool])
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// ownersOn fails the test unless the files below root are owned as want
// says (uid, gid).
func ownersOn(t *testing.T, what, root string, want map[string][2]uint32) {
	t.Helper()
	for p, w := range want {
		if st := statOf(t, filepath.Join(root, p)); st.Uid != w[0] || st.Gid != w[1] {
			t.Errorf("%s: %s is %d:%d, want %d:%d", what, p, st.Uid, st.Gid, w[0], w[1])
		}
	}
}

// On a pool whose filesystem cannot idmap (zfs-fuse), a default instance
// is unprivileged all the same: its volume is a clone of the image's base
// shifted once for the map, the next instance clones the same shifted
// base, exec and file push work with the IDs inside, an export carries
// the IDs inside (an import into a dir pool has them on disk, one into
// the zfs pool shifts them as it unpacks), and a switch to privileged and
// back shifts the files at the restart.
func TestShiftedPool(t *testing.T) {
	root, err := idmap.Root(idmap.SubUID, idmap.SubGID)
	if err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("0 %d %d", root.UID, root.Size)
	e := bootEnv(t, "zfs")
	e.launch("bb", "z")
	if got := e.uidMap("z"); got != shared {
		t.Fatalf("uid_map inside %q, want %q", got, shared)
	}
	if n := e.shiftedBases(e.pool); n != 1 {
		t.Fatalf("%d shifted bases on %s, want 1", n, e.pool)
	}
	// (zfs-fuse's daemon judges a chown by the caller's host UID, so root
	// inside cannot give files away there: see README.)
	e.ok("exec", "z", "--", "sh", "-c", "touch /root/made && mkdir /root/d")
	local := writeFile(t, []byte("pushed\n"))
	e.ok("file", "push", local, "z/etc/pushed", "--uid", "1234", "--gid", "2345")
	e.ok("file", "push", local, "z/root/d/f", "--uid", "1000", "--gid", "1001")
	if got := e.ok("exec", "z", "--", "stat", "-c", "%u %g", "/root/made", "/root/d/f", "/etc/pushed", "/etc/hostname", "/bin/busybox"); got != "0 0\n1000 1001\n1234 2345\n0 0\n0 0\n" {
		t.Fatalf("owners inside: %q", got)
	}
	u, g := root.UID, root.GID
	ownersOn(t, "z on disk", instanceRoot(t, e, "z"), map[string][2]uint32{
		"root/made": {u, g}, "root/d/f": {u + 1000, g + 1001}, "etc/pushed": {u + 1234, g + 2345}, "bin/busybox": {u, g}})
	if got := e.ok("file", "pull", "z/etc/pushed", "-"); got != "pushed\n" {
		t.Fatalf("pulled %q", got)
	}

	// A second instance is a clone of the same shifted base: no walk.
	e.launch("bb", "z2")
	if n := e.shiftedBases(e.pool); n != 1 {
		t.Fatalf("%d shifted bases on %s after a second instance, want 1", n, e.pool)
	}
	if got := e.uidMap("z2"); got != shared {
		t.Fatalf("z2: uid_map inside %q", got)
	}

	// Out with the IDs inside; in again, unshifted or shifted as the pool needs.
	e.ok("snapshot", "create", "z", "s0")
	file := filepath.Join(t.TempDir(), "z.backup")
	e.ok("export", "z", "-o", file)
	e.fails(2, "export it without --optimized", "export", "z", "-o", file+".opt", "--optimized")
	unshifted := map[string][2]uint32{"root/made": {0, 0}, "root/d/f": {1000, 1001}, "etc/pushed": {1234, 2345}, "bin/busybox": {0, 0}}
	e.ok("import", file, "zd", "--pool", "default")
	ownersOn(t, "the import into a dir pool", instanceRoot(t, e, "zd"), unshifted)
	e.ok("copy", "z", "zc", "--pool", "default")
	ownersOn(t, "the copy to a dir pool", instanceRoot(t, e, "zc"), unshifted)
	e.ok("import", file, "zz", "--pool", e.pool)
	ownersOn(t, "the import into the zfs pool", instanceRoot(t, e, "zz"), map[string][2]uint32{"root/d/f": {u + 1000, g + 1001}, "etc/pushed": {u + 1234, g + 2345}})
	e.ok("start", "zz", "--wait")
	if got := e.ok("exec", "zz", "--", "stat", "-c", "%u %g", "/etc/pushed"); got != "1234 2345\n" {
		t.Fatalf("zz: /etc/pushed inside is %q", got)
	}
	// A copy within the pool goes by zfs's streams, the files shifted as
	// they are, and keeps their shift.
	e.ok("copy", "z", "zs")
	ownersOn(t, "the copy within the zfs pool", instanceRoot(t, e, "zs"), map[string][2]uint32{"root/d/f": {u + 1000, g + 1001}, "etc/pushed": {u + 1234, g + 2345}})
	e.ok("start", "zs", "--wait")
	if got := e.ok("exec", "zs", "--", "stat", "-c", "%u %g", "/etc/pushed", "/root/d/f"); got != "1234 2345\n1000 1001\n" {
		t.Fatalf("zs: owners inside are %q", got)
	}

	// Privileged, then unprivileged again: the files follow at each restart.
	e.switchAndBack("z", shared, func() { ownersOn(t, "z privileged", instanceRoot(t, e, "z"), unshifted) })
	if got := e.ok("exec", "z", "--", "stat", "-c", "%u", "/root/privileged", "/root/d/f"); got != "0\n1000\n" {
		t.Fatalf("owners after the switches: %q", got)
	}
	e.ok("snapshot", "restore", "z", "s0", "--force")
	if got := e.ok("exec", "z", "--", "stat", "-c", "%u", "/etc/pushed"); got != "1234\n" {
		t.Fatalf("after a restore: /etc/pushed is %q inside", got)
	}
	e.consistent()
	e.ok("delete", "z", "--force")
	e.ok("delete", "z2", "--force")
	for _, name := range []string{"zz", "zd", "zc", "zs"} {
		e.ok("delete", name, "--force")
	}
	if n := e.idmapMounts(); n != 0 {
		t.Fatalf("%d roots left mounted after the deletes", n)
	}
	e.ok("image", "delete", "bb")
	if n := e.shiftedBases(e.pool); n != 0 {
		t.Fatalf("%d shifted bases left after the image went", n)
	}
	e.consistent()
}

// Root's subordinate range comes from /etc/subuid and /etc/subgid; one
// too small for an instance is refused with one line. (Run in a mount
// namespace of their own, with the files bound over the host's.)
func TestSubordinateRange(t *testing.T) {
	e := bootEnv(t, "dir")
	withSubIDs := func(text string, args ...string) result {
		t.Helper()
		f := writeFile(t, []byte(text))
		script := `mount --bind "$1" /etc/subuid && mount --bind "$1" /etc/subgid && shift && exec "$@"`
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", f}, e.silo(args...)...)...)
		cmd.Env = append(os.Environ(), "SILO_STATE_DIR="+e.state)
		out, err := cmd.Output()
		r := result{out: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code, r.err = ee.ExitCode(), string(ee.Stderr)
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := withSubIDs("root:100000:1000\n", "launch", "bb", "small"); r.code != 2 || !strings.Contains(r.err, "fewer than the 65536") {
		t.Fatalf("a range of 1000 IDs: exit %d, %s", r.code, r.err)
	}
	if st := e.status("small"); st.State != "absent" {
		t.Fatalf("a refused launch left %+v", st)
	}
	if r := withSubIDs("root:100000:65536\n", "launch", "bb", "sub", "--wait"); r.code != 0 {
		t.Fatalf("launch: exit %d, %s", r.code, r.err)
	}
	if got := e.uidMap("sub"); got != "0 100000 65536" {
		t.Fatalf("uid_map %q, want root's range from /etc/subuid", got)
	}
	e.ok("stop", "sub", "--force")
}
