package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory of the host's, as a disk: hot-plugged into a running
// unprivileged instance and mounted again at its next start. With
// shift=true its root sees the host's root's files as its own and writes
// them as the host's root on disk; without, they are nobody's and it
// cannot write them. Read-only when asked, never setuid nor with devices,
// and the instance's root can change neither; gone when removed. Refused
// with one line: a source in the state directory (through a symlink too),
// a source that is no directory, a path inside that is no directory, and
// a path whose symlink inside points out of the instance stays in it.
func TestDiskHostDir(t *testing.T) {
	for _, driver := range []string{"dir", "btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil { // for the instance that sees it as nobody's
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.launch("bb", "r")
			e.ok("config", "device", "add", "r", "data", "disk", "source="+dir, "path=/mnt/data", "shift=true")
			e.ok("config", "device", "add", "r", "ro", "disk", "source="+dir, "path=/srv/ro", "readonly=true", "shift=true")
			e.ok("config", "device", "add", "r", "plain", "disk", "source="+dir, "path=/mnt/plain")
			check := func() {
				t.Helper()
				if got := e.sh("r", "stat -c %u /mnt/plain/hello; touch /mnt/plain/x 2>/dev/null || echo refused"); got != "65534\nrefused\n" {
					t.Fatalf("a host directory without shift, inside: %q", got)
				}
				for _, m := range []string{"/mnt/data", "/mnt/plain", "/srv/ro"} {
					if opts := e.sh("r", "grep ' "+m+" ' /proc/mounts"); !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") {
						t.Fatalf("disk at %s: %q", m, opts)
					}
					if r := e.run("exec", "r", "--", "mount", "-o", "remount,bind,suid,dev", m); r.code == 0 {
						t.Fatalf("the instance's root let setuid programs run from %s", m)
					}
				}
				if got := e.sh("r", "cat /mnt/data/hello; stat -c %u:%g /mnt/data/hello; id -u"); got != "from the host\n0:0\n0\n" {
					t.Fatalf("the disk inside: %q", got)
				}
				e.sh("r", "echo inside > /mnt/data/w; chown 1000:1000 /mnt/data/w")
				if st := statOf(t, filepath.Join(dir, "w")); st.Uid != 1000 || st.Gid != 1000 {
					t.Fatalf("a file written and given away inside is %d:%d on the host", st.Uid, st.Gid)
				}
				e.sh("r", "echo again > /mnt/data/w2")
				if st := statOf(t, filepath.Join(dir, "w2")); st.Uid != 0 {
					t.Fatalf("a file root wrote inside is owned by %d on the host", st.Uid)
				}
				os.Remove(filepath.Join(dir, "w2"))
				if r := e.run("exec", "r", "--", "touch", "/srv/ro/x"); r.code == 0 {
					t.Fatal("a read-only disk took a write")
				}
				// Its root holds its mount namespace, but not the flag.
				if r := e.run("exec", "r", "--", "mount", "-o", "remount,bind,rw", "/srv/ro"); r.code == 0 {
					t.Fatal("the instance's root made a read-only disk writable")
				}
				if got := e.sh("r", "cat /srv/ro/hello"); got != "from the host\n" {
					t.Fatalf("read-only disk: %q", got)
				}
			}
			check()
			e.ok("restart", "r", "--force")
			check()
			e.ok("config", "device", "remove", "r", "data")
			if got := e.sh("r", "ls -A /mnt/data; grep -c ' /mnt/data ' /proc/mounts || true"); got != "0\n" {
				t.Fatalf("the disk removed, /mnt/data holds %q", got)
			}
			e.ok("config", "device", "remove", "r", "ro")
			e.ok("config", "device", "remove", "r", "plain")

			// Refusals, each with one line and nothing recorded.
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(e.state, link); err != nil {
				t.Fatal(err)
			}
			e.fails(2, "state directory", "config", "device", "add", "r", "bad", "disk", "source="+e.state, "path=/x")
			e.fails(2, "state directory", "config", "device", "add", "r", "bad", "disk", "source="+link+"/", "path=/x")
			e.fails(2, "not a directory", "config", "device", "add", "r", "bad", "disk", "source="+filepath.Join(dir, "hello"), "path=/x")
			ext := t.TempDir()
			e.ok("pool", "create", "ext", "--driver", "dir", "--source", ext)
			e.fails(2, "pool ext's directory", "config", "device", "add", "r", "bad", "disk", "source="+ext, "path=/x")
			e.fails(3, "no such directory", "config", "device", "add", "r", "bad", "disk", "source="+dir+"/none", "path=/x")
			e.fails(2, "unknown key", "config", "device", "add", "r", "bad", "disk", "source="+dir, "path=/x", "propagation=shared")
			e.fails(2, "state directory", "config", "device", "add", "r", "bad", "disk", "source=/run/silo", "path=/x")
			e.fails(2, "always shown to an instance with its own IDs", "config", "device", "add", "r", "bad", "disk", "pool=default", "source=v", "path=/x", "shift=true")
			e.fails(2, "absolute path", "config", "device", "add", "r", "bad", "disk", "source="+dir, "path=x")
			e.fails(2, "true or false", "config", "device", "add", "r", "bad", "disk", "source="+dir, "path=/x", "readonly=yes")
			e.fails(2, "/etc/passwd in the instance is not a directory", "config", "device", "add", "r", "bad", "disk", "source="+dir, "path=/etc/passwd")
			if _, ok := e.instanceOf("r").Devices["bad"]; ok {
				t.Fatal("a refused disk is recorded")
			}
			// A symlink inside that points at the host's /etc leads to
			// the instance's own.
			e.sh("r", "mkdir -p /mnt/esc && ln -s /etc /mnt/esc/up")
			e.ok("config", "device", "add", "r", "esc", "disk", "source="+dir, "path=/mnt/esc/up/sub")
			if got := e.sh("r", "cat /etc/sub/hello"); got != "from the host\n" {
				t.Fatalf("through a symlink inside: %q", got)
			}
			if _, err := os.Stat("/etc/sub"); err == nil {
				t.Fatal("a symlink inside led the mount onto the host")
			}
			e.ok("config", "device", "remove", "r", "esc")

			// A source removed from the host leaves a device that can
			// still be removed.
			gone := t.TempDir()
			e.ok("config", "device", "add", "r", "gone", "disk", "source="+gone, "path=/mnt/gone")
			if err := os.Remove(gone); err != nil {
				t.Fatal(err)
			}
			e.ok("config", "device", "remove", "r", "gone")

			// A stopped instance's disk is mounted at its start, the
			// missing path made and owned by the instance's root.
			e.ok("stop", "r", "--force")
			e.ok("config", "device", "add", "r", "later", "disk", "source="+dir, "path=/a/b/c")
			// One disk inside another's path, whatever their names.
			outer := t.TempDir()
			e.ok("config", "device", "add", "r", "a-inner", "disk", "source="+dir, "path=/n/inner")
			e.ok("config", "device", "add", "r", "b-outer", "disk", "source="+outer, "path=/n", "shift=true")
			e.ok("start", "r")
			if got := e.sh("r", "cat /a/b/c/hello; stat -c %u /a/b; cat /n/inner/hello"); got != "from the host\n0\nfrom the host\n" {
				t.Fatalf("disks at start: %q", got)
			}
			if !strings.Contains(e.ok("config", "device", "show", "r"), "later") {
				t.Fatal("the disk is not shown")
			}
			// Where the path inside is no directory, a stopped instance
			// refuses the disk, and a start says so when the instance
			// made it a file since.
			e.ok("stop", "r", "--force")
			e.fails(2, "device file: /etc/passwd in the instance is not a directory", "config", "device", "add", "r", "file", "disk", "source="+dir, "path=/etc/passwd")
			e.ok("config", "device", "add", "r", "file", "disk", "source="+dir, "path=/etc/later")
			e.ok("start", "r")
			e.sh("r", "umount /etc/later && rmdir /etc/later && touch /etc/later")
			e.ok("stop", "r", "--force")
			e.fails(2, "start r: device file: /etc/later in the instance is not a directory", "start", "r")
			e.ok("config", "device", "remove", "r", "file")
			e.ok("start", "r")
		})
	}
}

// mountedAt says whether instance name has a mount at path, checking
// that its records agree: a disk device recorded there, or none.
func (e *env) mountedAt(name, dev, path string) bool {
	e.t.Helper()
	_, recorded := e.instanceOf(name).ExpandedDevices[dev]
	n := strings.TrimSpace(e.sh(name, "grep -c ' "+path+" ' /proc/mounts || true"))
	if inside := n != "0"; recorded != inside || n != "0" && n != "1" {
		e.t.Fatalf("disk %s of %s: recorded %v, mounted %s times at %s", dev, name, recorded, n, path)
	}
	return recorded
}

// A kill -9 at each step of a disk's plugging into a running instance and
// unplugging, from its own devices or a profile's, and of a volume's attach
// and detach, then any silo command:
// the instance has the disk mounted exactly when its records have it.
func TestDiskCrashSafety(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "r")
	e.ok("volume", "create", "default", "vol")
	e.ok("volume", "create", "default", "vol2")
	t.Cleanup(func() {
		e.ok("delete", "--force", "r")
		e.ok("volume", "delete", "default", "vol")
		e.ok("volume", "delete", "default", "vol2")
	})
	dir := t.TempDir()
	dev := func(name string, n int) string { return fmt.Sprintf("%s%d", name, n) }
	steps := []string{"begun", "resized", "applied", "committed"}
	cases := []crashCase{
		{
			name: "disk-add", kind: "update", steps: steps, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"config", "device", "add", "r", dev("a", n), "disk", "source=" + dir, "path=/mnt/" + dev("a", n)}
			},
			state: func(e *env, n int) bool { return e.mountedAt("r", dev("a", n), "/mnt/"+dev("a", n)) },
		},
		{
			name: "disk-remove", kind: "update", steps: steps, done: []string{"committed"},
			setup: func(e *env, n int) {
				e.ok("config", "device", "add", "r", dev("x", n), "disk", "source="+dir, "path=/mnt/"+dev("x", n))
			},
			cmd:   func(n int) []string { return []string{"config", "device", "remove", "r", dev("x", n)} },
			state: func(e *env, n int) bool { return !e.mountedAt("r", dev("x", n), "/mnt/"+dev("x", n)) },
		},
		{
			name: "profile-disk", kind: "update-profile", steps: steps, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"profile", "device", "add", "default", dev("q", n), "disk", "source=" + dir, "path=/mnt/" + dev("q", n)}
			},
			state: func(e *env, n int) bool { return e.mountedAt("r", dev("q", n), "/mnt/"+dev("q", n)) },
		},
		{
			name: "volume-attach", kind: "update", steps: steps, done: []string{"committed"},
			cmd: func(n int) []string {
				return []string{"volume", "attach", "default", "vol", "r", "/vol/" + dev("v", n), dev("v", n)}
			},
			state: func(e *env, n int) bool { return e.mountedAt("r", dev("v", n), "/vol/"+dev("v", n)) },
		},
		{
			name: "volume-detach", kind: "update", steps: steps, done: []string{"committed"},
			setup: func(e *env, n int) {
				e.ok("volume", "attach", "default", "vol2", "r", "/vol/"+dev("w", n), dev("w", n))
			},
			cmd:   func(n int) []string { return []string{"volume", "detach", "default", "vol2", "r"} },
			state: func(e *env, n int) bool { return !e.mountedAt("r", dev("w", n), "/vol/"+dev("w", n)) },
		},
	}
	runCrashes(t, e, cases, nil)
}

// One custom volume attached at once to a privileged instance, an
// unprivileged one and two isolated ones (different maps), at their start
// or live: each writes to it, and each sees what any of them wrote as
// its own root's, and a file given to user 1000 as user 1000's. Detached
// from one, the others keep it. A profile's disk reaches running
// instances and new ones, and leaves them with it. Refused: a volume that
// does not exist, a path that is not a directory, and on zfs-fuse, which
// the kernel cannot idmap, an unprivileged instance.
func TestDiskVolumes(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			pool := e.pool
			if pool == "" {
				pool = "default"
			}
			e.launch("bb", "p", "-c", "security.privileged=true")
			e.ok("volume", "create", pool, "shared") // the default pool is made at the first launch
			insts := []string{"p"}
			e.launch("bb", "u")
			if driver == "zfs" {
				e.fails(2, "cannot idmap", "volume", "attach", pool, "shared", "u", "/data")
			} else {
				e.launch("bb", "i1", "-c", "security.idmap.isolated=true")
				e.ok(append([]string{"create", "bb", "i2", "-c", "security.idmap.isolated=true"}, e.poolArgs()...)...)
				insts = append(insts, "u", "i1", "i2")
			}
			for _, name := range insts {
				e.ok("volume", "attach", pool, "shared", name, "/data")
			}
			if len(insts) > 1 {
				e.ok("start", "i2") // mounted at its start
				if e.uidMap("i1") == e.uidMap("i2") || e.uidMap("u") == e.uidMap("i1") {
					t.Fatalf("the instances share a map: %q %q %q", e.uidMap("u"), e.uidMap("i1"), e.uidMap("i2"))
				}
			}
			for _, name := range insts {
				e.sh(name, "echo "+name+" > /data/by-"+name)
			}
			e.sh(insts[len(insts)-1], "touch /data/given && chown 1000:1000 /data/given")
			for _, name := range insts {
				for _, other := range insts {
					if got := e.sh(name, "cat /data/by-"+other+"; stat -c %u:%g /data/by-"+other); got != other+"\n0:0\n" {
						t.Fatalf("%s reads what %s wrote: %q", name, other, got)
					}
				}
				if got := e.sh(name, "stat -c %u:%g /data/given"); got != "1000:1000\n" {
					t.Fatalf("%s sees the file given to 1000 as %q", name, got)
				}
			}
			e.fails(3, "not found", "volume", "attach", pool, "nope", "p", "/x")
			e.fails(2, "not a directory", "volume", "attach", pool, "shared", "p", "/bin/sh", "other")
			e.fails(3, "no disk of volume", "volume", "detach", pool, "nope", "p")

			e.ok("volume", "detach", pool, "shared", "p")
			if got := e.sh("p", "ls -A /data"); got != "" {
				t.Fatalf("detached, p's /data holds %q", got)
			}
			if len(insts) > 1 {
				if got := e.sh(insts[len(insts)-1], "cat /data/by-p"); got != "p\n" {
					t.Fatalf("the others lost the volume: %q", got)
				}
			}

			// A profile's disk, live and at a launch.
			if driver == "zfs" {
				e.fails(2, "cannot idmap", "profile", "device", "add", "default", "prof", "disk", "pool="+pool, "source=shared", "path=/prof")
				e.ok("delete", "--force", "u")
			}
			e.ok("profile", "device", "add", "default", "prof", "disk", "pool="+pool, "source=shared", "path=/prof")
			if got := e.sh("p", "cat /prof/by-p"); got != "p\n" {
				t.Fatalf("a profile's disk, live: %q", got)
			}
			e.launch("bb", "late", "-c", "security.privileged=true")
			if got := e.sh("late", "cat /prof/by-p"); got != "p\n" {
				t.Fatalf("a profile's disk at a launch: %q", got)
			}
			e.ok("profile", "device", "remove", "default", "prof")
			if got := e.sh("late", "ls -A /prof"); got != "" {
				t.Fatalf("the profile's disk removed, /prof holds %q", got)
			}
			for _, name := range append(insts, "late") {
				e.ok("delete", "--force", name)
			}
			e.ok("volume", "delete", pool, "shared")
		})
	}
}
