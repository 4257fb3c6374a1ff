package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory of the host's, as a disk: hot-plugged into a running
// unprivileged instance and mounted again at its next start, where its
// root sees the host's root's files as its own and writes them as the
// host's root on disk; read-only when asked; gone when removed. Refused
// with one line: a source in the state directory (through a symlink too),
// a source that is no directory, a path inside that is no directory, and
// a path whose symlink inside points out of the instance stays in it.
func TestDiskHostDir(t *testing.T) {
	for _, driver := range []string{"dir", "btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.launch("bb", "r")
			e.ok("config", "device", "add", "r", "data", "disk", "source="+dir, "path=/mnt/data")
			e.ok("config", "device", "add", "r", "ro", "disk", "source="+dir, "path=/srv/ro", "readonly=true")
			check := func() {
				t.Helper()
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

			// Refusals, each with one line and nothing recorded.
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(e.state, link); err != nil {
				t.Fatal(err)
			}
			e.fails(2, "state directory", "config", "device", "add", "r", "bad", "disk", "source="+e.state, "path=/x")
			e.fails(2, "state directory", "config", "device", "add", "r", "bad", "disk", "source="+link+"/", "path=/x")
			e.fails(2, "not a directory", "config", "device", "add", "r", "bad", "disk", "source="+filepath.Join(dir, "hello"), "path=/x")
			e.fails(3, "no such directory", "config", "device", "add", "r", "bad", "disk", "source="+dir+"/none", "path=/x")
			e.fails(2, "unknown key", "config", "device", "add", "r", "bad", "disk", "source="+dir, "path=/x", "shift=true")
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
			e.ok("start", "r")
			if got := e.sh("r", "cat /a/b/c/hello; stat -c %u /a/b"); got != "from the host\n0\n" {
				t.Fatalf("disk at start: %q", got)
			}
			if !strings.Contains(e.ok("config", "device", "show", "r"), "later") {
				t.Fatal("the disk is not shown")
			}
			// Where the path inside is no directory, the start says so.
			e.ok("stop", "r", "--force")
			e.ok("config", "device", "add", "r", "file", "disk", "source="+dir, "path=/etc/passwd")
			e.fails(2, "start r: device file: /etc/passwd in the instance is not a directory", "start", "r")
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
// unplugging, from its own devices or a profile's, then any silo command:
// the instance has the disk mounted exactly when its records have it.
func TestDiskCrashSafety(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "r")
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
	}
	runCrashes(t, e, cases, nil)
}
