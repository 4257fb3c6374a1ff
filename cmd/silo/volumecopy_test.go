package main

import (
	"crypto/rand"
	"strings"
	"testing"
)

// volume copy carries the snapshots, with their names and trees, within a
// pool, to a pool of the same driver and across drivers; --volume-only
// leaves them out, and POOL/NAME/SNAP copies that snapshot alone.
func TestVolumeCopy(t *testing.T) {
	e, pools := backupEnv(t)
	for _, src := range drivers {
		p := pools[src]
		name := "v-" + src
		e.ok("volume", "create", p, name)
		writeVolumeFile(t, e, p, name, "f", "one")
		e.ok("volume", "snapshot", "create", p, name, "s0")
		// Each change alters the size: zfs-fuse keeps whole seconds of
		// mtime, and the difference of two trees is by the quick check.
		writeVolumeFile(t, e, p, name, "f", "second")
		e.ok("volume", "snapshot", "create", p, name, "s1")
		writeVolumeFile(t, e, p, name, "f", "the head")
		for _, dst := range drivers {
			cp := name + "-" + dst
			e.ok("volume", "copy", p+"/"+name, pools[dst]+"/"+cp)
			if got := strings.Join(volumeSnapshotNames(e.volume(pools[dst], cp)), " "); got != "s0 s1" {
				t.Fatalf("%s has snapshots %q", cp, got)
			}
			if got := volumeFile(t, e, pools[dst], cp, "f"); got != "the head" {
				t.Fatalf("%s holds %q", cp, got)
			}
			for snap, want := range map[string]string{"s0": "one", "s1": "second"} {
				e.ok("volume", "snapshot", "restore", pools[dst], cp, snap)
				if got := volumeFile(t, e, pools[dst], cp, "f"); got != want {
					t.Fatalf("%s restored to %s holds %q", cp, snap, got)
				}
			}
			only := cp + "-only"
			e.ok("volume", "copy", p+"/"+name, pools[dst]+"/"+only, "--volume-only")
			if got := volumeSnapshotNames(e.volume(pools[dst], only)); len(got) != 0 || volumeFile(t, e, pools[dst], only, "f") != "the head" {
				t.Fatalf("%s, copied with --volume-only, has snapshots %v", only, got)
			}
			one := cp + "-s0"
			e.ok("volume", "copy", p+"/"+name+"/s0", pools[dst]+"/"+one)
			if got := volumeSnapshotNames(e.volume(pools[dst], one)); len(got) != 0 || volumeFile(t, e, pools[dst], one, "f") != "one" {
				t.Fatalf("%s, a copy of s0, has snapshots %v", one, got)
			}
		}
	}
	e.fails(4, "already exists", "volume", "copy", "default/v-dir", "default/v-dir-dir")
	e.fails(3, "not found", "volume", "copy", "default/nothing", "default/x")
	e.fails(3, "not found", "volume", "copy", "default/v-dir/nosnap", "default/x")
	e.fails(2, "is not POOL/NAME", "volume", "copy", "default", "default/x")
	e.fails(2, "not a snapshot", "volume", "copy", "default/v-dir", "default/x/s0")
	e.consistent()
}

// volumeRefreshed runs volume copy --refresh and returns the bytes it
// says it moved and what moved them.
func volumeRefreshed(t *testing.T, e *env, args ...string) (int64, string) {
	t.Helper()
	return parseRefreshed(t, e.ok(append([]string{"volume", "copy", "--refresh"}, args...)...))
}

// volume copy --refresh, within a pool, between pools of one driver and
// across drivers: it adds the snapshots the copy lacks, keeps its own,
// moves only what changed (by btrfs's or zfs's streams between pools of
// that driver),
// and refuses a copy that has diverged unless --force.
func TestVolumeRefresh(t *testing.T) {
	e, pools := backupEnv(t)
	targets := morePools(e, pools)
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	for _, src := range drivers {
		p, name := pools[src], "r-"+src
		e.ok("volume", "create", p, name)
		writeVolumeFile(t, e, p, name, "big", random(4<<20))
		e.ok("volume", "snapshot", "create", p, name, "a")
		for _, dst := range targets {
			cp := name + "-" + dst
			e.ok("volume", "copy", p+"/"+name, pools[dst]+"/"+cp)
			if n, by := volumeRefreshed(t, e, p+"/"+name, pools[dst]+"/"+cp); n > 64<<10 || by != refreshBy(src, dst) {
				t.Fatalf("%s: a refresh with nothing new moved %d bytes by %s", cp, n, by)
			}
			e.ok("volume", "snapshot", "create", pools[dst], cp, "own")
		}
		b := random(1 << 20)
		writeVolumeFile(t, e, p, name, "small", b)
		e.ok("volume", "snapshot", "create", p, name, "b")
		head := random(50 << 10)
		writeVolumeFile(t, e, p, name, "small", head)
		for _, dst := range targets {
			cp := name + "-" + dst
			if n, by := volumeRefreshed(t, e, p+"/"+name, pools[dst]+"/"+cp); n < 1<<20+50<<10 || n > 3<<19 || by != refreshBy(src, dst) {
				t.Fatalf("%s: a refresh after 1 MiB and 50 KiB of changes moved %d bytes by %s", cp, n, by)
			}
			if got := strings.Join(volumeSnapshotNames(e.volume(pools[dst], cp)), " "); got != "a own b" {
				t.Fatalf("%s has snapshots %q after the refresh", cp, got)
			}
			if volumeFile(t, e, pools[dst], cp, "small") != head {
				t.Fatalf("%s: the head was not refreshed", cp)
			}
		}
		e.ok("volume", "snapshot", "create", p, name, "c")
		for _, dst := range targets {
			cp := name + "-" + dst
			e.ok("volume", "snapshot", "create", pools[dst], cp, "c")
			e.fails(2, "has diverged", "volume", "copy", p+"/"+name, pools[dst]+"/"+cp, "--refresh")
			volumeRefreshed(t, e, p+"/"+name, pools[dst]+"/"+cp, "--force")
			if got := strings.Join(volumeSnapshotNames(e.volume(pools[dst], cp)), " "); got != "a own b c" {
				t.Fatalf("%s has snapshots %q after a forced refresh", cp, got)
			}
			e.ok("volume", "snapshot", "restore", pools[dst], cp, "b")
			if volumeFile(t, e, pools[dst], cp, "small") != b {
				t.Fatalf("%s/b does not hold the source's b", cp)
			}
		}
	}
	e.fails(2, "leave out /SNAP", "volume", "copy", "default/r-dir/a", "default/r-dir-dir", "--refresh")
	e.fails(3, "not found", "volume", "copy", "default/r-dir", "default/nothing", "--refresh")
	e.consistent()
}
