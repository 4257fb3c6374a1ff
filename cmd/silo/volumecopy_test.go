package main

import (
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
