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
			disk := instanceRoot(t, e, "u")
			for p, want := range map[string][2]uint32{"root/made": {0, 0}, "root/d": {1000, 1001}, "etc/pushed": {1234, 2345}} {
				if st := statOf(t, filepath.Join(disk, p)); st.Uid != want[0] || st.Gid != want[1] {
					t.Errorf("%s on disk: %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
				}
			}
			if got := e.ok("file", "pull", "u/etc/pushed", "-"); got != "pushed\n" {
				t.Fatalf("pulled %q", got)
			}

			// Privileged, then unprivileged again, with a restart each.
			e.ok("config", "set", "u", "security.privileged=true")
			e.ok("restart", "u")
			if got := e.uidMap("u"); got != "0 0 4294967295" {
				t.Fatalf("privileged: uid_map %q", got)
			}
			if i := e.info("u"); !i.Privileged || len(i.Idmap) != 0 {
				t.Fatalf("info of a privileged instance: %v, %+v", i.Privileged, i.Idmap)
			}
			e.ok("exec", "u", "--", "touch", "/root/privileged")
			e.ok("config", "unset", "u", "security.privileged")
			e.ok("restart", "u")
			if got := e.uidMap("u"); got != shared {
				t.Fatalf("unprivileged again: uid_map %q", got)
			}
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

// On a pool whose filesystem cannot idmap (zfs-fuse), an unprivileged
// instance is refused with one line, and nothing runs or stays mounted;
// a privileged one starts.
func TestNoIdmapPool(t *testing.T) {
	e := bootEnv(t, "zfs")
	e.ok("create", "bb", "z", "--pool", e.pool)
	e.fails(2, "filesystem cannot idmap: use security.privileged=true", "start", "z")
	if st := e.status("z"); st.State != "stopped" || e.idmapMounts() != 0 {
		t.Fatalf("after a refused start: %+v, %d idmapped roots", st, e.idmapMounts())
	}
	e.ok("config", "set", "z", "security.privileged=true")
	e.ok("start", "z", "--wait")
	e.ok("stop", "z", "--force")
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
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", f, siloBin}, args...)...)
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
