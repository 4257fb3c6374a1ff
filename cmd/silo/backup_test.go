package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage/storagetest"
)

// backupEnv is one state directory with a pool of every driver.
func backupEnv(t *testing.T) (*env, map[string]string) {
	e := newEnv(t, "dir")
	pools := map[string]string{"dir": "default"}
	for _, d := range []string{"btrfs", "zfs"} {
		needDriver(t, d)
		e.ok("pool", "create", "p"+d, "--driver", d, "--size", "1GiB")
		pools[d] = "p" + d
	}
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	return e, pools
}

// withTree runs fn on the root of instance name (or its snapshot snap).
func withTree(t *testing.T, e *env, name, snap string, fn func(root string)) {
	t.Helper()
	eng, err := engine.Open(context.Background(), e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	root, release, err := eng.OpenTree(context.Background(), name, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	fn(root)
}

// history gives instance name on pool a past: every kind of file, three
// snapshots with changes, deletions and a restore between them (so that
// its snapshots live in two volumes), and changes since the last. It is
// privileged, so that its files (and those of its copies, which keep its
// config) are on disk as written here on every pool: on one that cannot
// idmap, an unprivileged instance's are shifted (TestShiftedPool).
func history(t *testing.T, e *env, name, pool string) {
	e.ok("create", "tiny", name, "--pool", pool, "-c", "security.privileged=true")
	withTree(t, e, name, "", func(root string) { storagetest.WriteFixture(t, root) })
	e.ok("snapshot", "create", name, "s0")
	withTree(t, e, name, "", func(root string) {
		os.WriteFile(filepath.Join(root, "etc/motd"), []byte("one\n"), 0o644)
		os.Remove(filepath.Join(root, "usr/bin/big"))
		os.Chmod(filepath.Join(root, "etc/conf.d/app"), 0o640)
		os.MkdirAll(filepath.Join(root, "var/new/deep"), 0o750)
	})
	e.ok("snapshot", "create", name, "s1")
	e.ok("snapshot", "restore", name, "s0")
	withTree(t, e, name, "", func(root string) {
		os.WriteFile(filepath.Join(root, "etc/after"), []byte("after the restore\n"), 0o600)
		os.RemoveAll(filepath.Join(root, "var/empty"))
	})
	e.ok("snapshot", "create", name, "s2")
	withTree(t, e, name, "", func(root string) {
		os.Remove(filepath.Join(root, "dev/fifo"))
		os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("changed\n"), 0o755)
	})
}

// sameInstance fails the test unless b holds a's snapshots and root.
func sameInstance(t *testing.T, e *env, a, b string, snaps ...string) {
	t.Helper()
	sameInstanceVia(t, e, a, a, b, snaps...)
}

// sameInstanceVia compares as sameInstance does, as far as the pool of
// instance via, which the copy went through, could keep.
func sameInstanceVia(t *testing.T, e *env, a, via, b string, snaps ...string) {
	t.Helper()
	sameTrees(t, e, a, via, b, true, snaps...)
}

// sameTrees compares as sameInstanceVia does, the heads only when head is set.
func sameTrees(t *testing.T, e *env, a, via, b string, head bool, snaps ...string) {
	t.Helper()
	withTree(t, e, via, "", func(probe string) {
		withTree(t, e, a, "", func(ha string) {
			withTree(t, e, b, "", func(hb string) {
				for _, s := range snaps {
					withTree(t, e, a, s, func(ra string) {
						withTree(t, e, b, s, func(rb string) {
							storagetest.RequireSameTree(t, b+"/"+s, ra, rb, probe, hb)
						})
					})
				}
				if head {
					storagetest.RequireSameTree(t, b, ha, hb, probe, hb)
				}
			})
		})
	})
}

func snapshotNames(t *testing.T, e *env, name string) []string {
	var snaps []struct{ Name string }
	e.json(&snaps, "snapshot", "list", name)
	var out []string
	for _, s := range snaps {
		out = append(out, s.Name)
	}
	return out
}

// Every driver's instance goes out in both forms and comes back, on every
// driver for the portable form, whole: its snapshots, its root, owners,
// modes, xattrs, links and device nodes.
func TestBackupRoundTrips(t *testing.T) {
	e, pools := backupEnv(t)
	dir := t.TempDir()
	for _, src := range drivers {
		name := "src-" + src
		history(t, e, name, pools[src])
		file := filepath.Join(dir, name+".backup")
		e.ok("export", name, "-o", file)
		for _, dst := range drivers {
			imported := "port-" + src + "-" + dst
			e.ok("import", file, imported, "--pool", pools[dst])
			if got := strings.Join(snapshotNames(t, e, imported), " "); got != "s0 s1 s2" {
				t.Fatalf("%s has snapshots %q", imported, got)
			}
			sameInstance(t, e, name, imported, "s0", "s1", "s2")
		}

		opt := filepath.Join(dir, name+".optimized")
		e.ok("export", name, "-o", opt, "--optimized", "--compression", "gzip")
		e.ok("import", opt, "opt-"+src, "--pool", pools[src])
		sameInstance(t, e, name, "opt-"+src, "s0", "s1", "s2")
		for _, dst := range drivers {
			if dst != src {
				e.fails(2, "only a "+src+" pool can receive", "import", opt, "wrong", "--pool", pools[dst])
			}
		}

		only := filepath.Join(dir, name+".only")
		e.ok("export", name, "-o", only, "--instance-only", "--compression", "none")
		e.ok("import", only, "only-"+src, "--pool", pools[src])
		if got := snapshotNames(t, e, "only-"+src); len(got) != 0 {
			t.Fatalf("--instance-only exported snapshots %v", got)
		}
		sameInstance(t, e, name, "only-"+src)
	}

	// Hop by hop: btrfs to zfs to dir, through pipes, keeps every tree.
	exported := e.ok("export", "src-btrfs", "-o", "-", "--compression", "xz")
	e.runInOK([]byte(exported), "import", "-", "hop-zfs", "--pool", pools["zfs"])
	exported = e.ok("export", "hop-zfs", "-o", "-")
	e.runInOK([]byte(exported), "import", "-", "hop-dir", "--pool", pools["dir"])
	// zfs-fuse keeps neither xattrs nor sub-second times; OpenZFS keeps both.
	sameInstanceVia(t, e, "src-btrfs", "hop-zfs", "hop-dir", "s0", "s1", "s2")

	e.fails(4, `instance "hop-dir" already exists`, "import", filepath.Join(dir, "src-dir.backup"), "hop-dir")
	e.fails(4, "already exists", "export", "src-dir", "-o", filepath.Join(dir, "src-dir.backup"))
	e.consistent()
}

func (e *env) runInOK(stdin []byte, args ...string) string {
	e.t.Helper()
	r := e.runIn(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("silo %s: exit %d: %s", strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

// A bad backup is refused with one clear line, and leaves nothing behind.
func TestBadBackups(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok("create", "tiny", "a")
	e.ok("snapshot", "create", "a")
	good := []byte(e.ok("export", "a", "-o", "-"))
	e.fails(2, "give -o FILE", "export", "a")
	corrupt := bytes.Clone(good)
	for i := len(corrupt) / 3; i < len(corrupt)/3+64; i++ {
		corrupt[i] ^= 0x5a
	}
	type badBackup struct {
		name, want string
		data       []byte
	}
	cases := []badBackup{
		{"truncated", "", good[:len(good)/2]},
		{"cut at the end", "", good[:len(good)-10]},
		{"corrupt", "", corrupt},
		{"an image, not a backup", "not a silo backup", rootfs(t)},
		{"empty", "", nil},
		{"a bad config key", "the backup's config", testutil.ReadTestdata(t, "backup", "bad-config.tar")},
	}
	// What the error says for each hostile backup of testdata/backup/hostile.
	wants := map[string]string{
		"traversal.tar":                 "leaves the root",
		"absolute.tar":                  "belongs to no part",
		"escaping-symlink.tar":          "leaves the root",
		"hard-link-out-of-its-tree.tar": "leaves snapshots/s0/",
		"write-through-a-symlink.tar":   "symlink",
		"absurd-size.tar":               "absurd size",
		"unlisted-part.tar":             "belongs to no part",
		"out-of-order.tar":              "comes after the part",
		"snapshot-name-is-a-path.tar":   "invalid or repeated snapshot",
		"future-format.tar":             "format 9 is not supported",
	}
	for name, data := range testutil.TestdataFiles(t, "backup/hostile", "*.tar") {
		want, ok := wants[name]
		if !ok {
			t.Fatalf("testdata/backup/hostile/%s: say what its error says", name)
		}
		cases = append(cases, badBackup{name, want, data})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.runIn(c.data, "import", "-", "b")
			if r.code != 2 || !strings.Contains(r.err, c.want) || strings.Count(r.err, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", r.code, r.err, c.want)
			}
			var insts []json.RawMessage
			e.json(&insts, "list")
			if len(insts) != 1 {
				t.Fatalf("%d instances after a refused import", len(insts))
			}
			e.consistent()
		})
	}
	if _, err := os.Stat("/tmp/escape"); err == nil {
		t.Fatal("a hostile backup wrote outside its root")
	}
}
