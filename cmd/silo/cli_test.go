package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/testutil"
)

// The README's walk-through, on every driver: import, create, push,
// snapshot, change, restore, pull, copy, rename, delete.
func TestWalkthrough(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			img := writeFile(t, rootfs(t))
			if out := e.ok("image", "import", img, "--alias", "tiny"); !strings.Contains(out, "Image imported") {
				t.Fatalf("import said %q", out)
			}
			if out := e.ok("image", "import", img); !strings.Contains(out, "already imported") {
				t.Fatalf("a second import said %q", out)
			}
			// Flags after positional arguments, as LXD users type them.
			e.ok(append([]string{"create", "tiny", "web"}, e.poolArgs()...)...)
			local := filepath.Join(t.TempDir(), "motd")
			os.WriteFile(local, []byte("version 1\n"), 0o640)
			e.ok("file", "push", local, "web/etc/motd", "--uid", "1000", "--gid", "100")
			e.ok("snapshot", "create", "web")
			os.WriteFile(local, []byte("version 2\n"), 0o640)
			e.ok("file", "push", local, "web/etc/motd")
			e.ok("snapshot", "create", "web", "second")
			os.WriteFile(local, []byte("version 3\n"), 0o640)
			e.ok("file", "push", local, "web/etc/motd")

			// Restore the older snapshot: the newer one stays usable, and
			// the head it replaces stays only as long as its snapshots,
			// not as one more mount on the host.
			mounts := e.mounts()
			e.ok("snapshot", "restore", "web", "snap0")
			if got := e.mounts(); got != mounts {
				t.Fatalf("%d mounts below the state directory after a restore, %d before", got, mounts)
			}
			if got := e.ok("file", "pull", "web/etc/motd", "-"); got != "version 1\n" {
				t.Fatalf("after restoring snap0: %q", got)
			}
			e.ok("snapshot", "restore", "web", "second")
			if got := e.ok("file", "pull", "web/etc/motd", "-"); got != "version 2\n" {
				t.Fatalf("after restoring second: %q", got)
			}
			var snaps []struct{ Name string }
			e.json(&snaps, "snapshot", "list", "web")
			if len(snaps) != 2 || snaps[0].Name != "snap0" || snaps[1].Name != "second" {
				t.Fatalf("snapshots %v", snaps)
			}
			pulled := filepath.Join(t.TempDir(), "pulled")
			e.ok("file", "pull", "web/etc/motd", pulled)
			if b, _ := os.ReadFile(pulled); string(b) != "version 2\n" {
				t.Fatalf("pulled %q", b)
			}

			// Copies: of the head and of a snapshot; within the pool and to a dir pool.
			e.ok("copy", "web/snap0", "old")
			if got := e.ok("file", "pull", "old/etc/motd", "-"); got != "version 1\n" {
				t.Fatalf("copy of snap0: %q", got)
			}
			e.ok("pool", "create", "other", "--driver", "dir")
			e.ok("copy", "web", "away", "--pool", "other")
			if got := e.ok("file", "pull", "away/etc/motd", "-"); got != "version 2\n" {
				t.Fatalf("copy to another pool: %q", got)
			}
			// A write in a copy shows nowhere else.
			e.ok("file", "push", local, "away/etc/motd")
			if got := e.ok("file", "pull", "web/etc/motd", "-"); got != "version 2\n" {
				t.Fatalf("a copy's write leaked: %q", got)
			}
			if driver != "dir" {
				// To another pool of the same driver: its send piped into its receive.
				e.ok("pool", "create", "twin", "--driver", driver, "--size", "512MiB")
				e.ok("copy", "web", "twin-copy", "--pool", "twin")
				if got := e.ok("file", "pull", "twin-copy/etc/motd", "-"); got != "version 2\n" {
					t.Fatalf("copy to a pool of the same driver: %q", got)
				}
				e.ok("delete", "twin-copy")
			}

			e.ok("rename", "old", "older")
			var info api.Instance
			e.json(&info, "info", "web")
			if info.Name != "web" || info.Status != "Stopped" || len(info.Snapshots) != 2 || info.State.Disk["root"].Usage <= 0 {
				t.Fatalf("info %+v", info)
			}
			var list []struct{ Name string }
			e.json(&list, "list")
			if len(list) != 3 || list[0].Name != "away" || list[1].Name != "older" || list[2].Name != "web" {
				t.Fatalf("list %v", list)
			}
			e.ok("snapshot", "delete", "web", "snap0")
			e.consistent()
			// The last snapshot in the first head takes that head with it.
			e.ok("snapshot", "delete", "web", "second")
			e.ok("delete", "older")
			e.consistent()
			if got := e.ok("file", "pull", "web/etc/motd", "-"); got != "version 2\n" {
				t.Fatalf("after deleting every snapshot: %q", got)
			}
		})
	}
}

// Every --format json output is the api package's types, field for field,
// and shows nothing the store keeps for itself: volume IDs, file paths.
func TestJSONIsTheAPI(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok("create", "tiny", "a", "-c", "user.tier=gold")
	e.ok("snapshot", "create", "a")
	e.ok("volume", "create", "default", "vol")
	e.ok("volume", "snapshot", "create", "default", "vol")

	list := e.instances()
	if len(list) != 1 {
		t.Fatalf("list %+v", list)
	}
	i := list[0]
	if i.Name != "a" || i.Type != "container" || i.Status != "Stopped" || i.StatusCode != api.Stopped ||
		i.State.Status != "Stopped" || i.State.Pid != 0 || i.State.Disk != nil || i.Pool() != "default" ||
		i.Config["user.tier"] != "gold" || len(i.Snapshots) != 1 || i.Snapshots[0].Name != "snap0" {
		t.Fatalf("list %+v, state %+v", i, i.State)
	}
	var info api.Instance
	e.apiJSON(&info, "info", "a")
	if info.State.Disk[api.RootDevice].Usage <= 0 || info.Image != i.Image || info.CreatedAt.IsZero() {
		t.Fatalf("info %+v, state %+v", info, info.State)
	}
	var snaps []api.InstanceSnapshot
	e.apiJSON(&snaps, "snapshot", "list", "a")
	if len(snaps) != 1 || snaps[0].Name != "snap0" || snaps[0].CreatedAt.IsZero() {
		t.Fatalf("snapshot list %+v", snaps)
	}
	var imgs []api.Image
	e.apiJSON(&imgs, "image", "list")
	if len(imgs) != 1 || imgs[0].Fingerprint != i.Image || len(imgs[0].Aliases) != 1 || imgs[0].Aliases[0].Name != "tiny" ||
		imgs[0].Layout != "rootfs" || imgs[0].Architecture != "" || imgs[0].UploadedAt.IsZero() {
		t.Fatalf("image list %+v", imgs)
	}
	var img api.Image
	e.apiJSON(&img, "image", "info", "tiny")
	if img.Fingerprint != i.Image {
		t.Fatalf("image info %+v", img)
	}
	var pools []api.StoragePool
	e.apiJSON(&pools, "pool", "list")
	want := []string{"/1.0/instances/a", "/1.0/images/" + i.Image, "/1.0/storage-pools/default/volumes/custom/vol"}
	if len(pools) != 1 || pools[0].Name != "default" || pools[0].Driver != "dir" || !slices.Equal(pools[0].UsedBy, want) ||
		len(pools[0].Config) != 0 || pools[0].Status != "Created" {
		t.Fatalf("pool list %+v", pools)
	}
	var pool api.StoragePool
	e.apiJSON(&pool, "pool", "info", "default")
	if !slices.Equal(pool.UsedBy, want) {
		t.Fatalf("pool info %+v", pool)
	}

	var private []string
	err := openStore(t, e).View(func(tx *store.Tx) error {
		inst, err := tx.Instance("a")
		if err != nil {
			return err
		}
		img, err := tx.Image(i.Image)
		if err != nil {
			return err
		}
		private = append(private, e.state, inst.Volume, inst.Snapshots[0].ID, img.Bases["default"])
		v, err := tx.CustomVolume("default", "vol")
		if err != nil {
			return err
		}
		private = append(private, v.Volume, v.Snapshots[0].ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"info", "a"}, {"snapshot", "list", "a"}, {"image", "list"},
		{"image", "info", "tiny"}, {"pool", "list"}, {"pool", "info", "default"},
		{"volume", "list"}, {"volume", "info", "default", "vol"}, {"volume", "snapshot", "list", "default", "vol"}} {
		out := e.ok(append(args, "--format", "json")...)
		for _, p := range private {
			if strings.Contains(out, p) {
				t.Errorf("silo %v shows %q, which only the store should know:\n%s", args, p, out)
			}
		}
	}
}

// Pushed files keep their mode and get the owner asked for; pulls and
// pushes never leave the instance's root.
func TestFiles(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok("create", "tiny", "a")
	local := filepath.Join(t.TempDir(), "script")
	os.WriteFile(local, []byte("#!/bin/sh\n"), 0o750)
	e.ok("file", "push", local, "a/usr-script")
	e.ok("file", "push", local, "a/etc/owned", "--uid", "33", "--gid", "44")
	var inst struct{ Pool string }
	e.json(&inst, "info", "a")
	root := instanceRoot(t, e, "a")
	for p, want := range map[string][3]uint32{"usr-script": {0o750, 0, 0}, "etc/owned": {0o750, 33, 44}} {
		var st = statOf(t, filepath.Join(root, p))
		if got := [3]uint32{st.Mode & 0o7777, st.Uid, st.Gid}; got != want {
			t.Errorf("%s: mode/uid/gid %o/%d/%d, want %o/%d/%d", p, got[0], got[1], got[2], want[0], want[1], want[2])
		}
	}
	// etc/escape -> /etc in the image: a push through it must not reach the host.
	e.fails(2, "leaves the instance's root", "file", "push", local, "a/etc/escape/silo-escaped")
	if _, err := os.Stat("/etc/silo-escaped"); err == nil {
		os.Remove("/etc/silo-escaped")
		t.Fatal("a push escaped to the host's /etc")
	}
	e.fails(2, "leaves the instance's root", "file", "pull", "a/../../../etc/shadow", "-")
	e.fails(2, "leaves the instance's root", "file", "pull", "a/etc/escape/shadow", "-")
	e.fails(3, "not found", "file", "pull", "a/nope", "-")
	e.fails(3, `instance "b" not found`, "file", "pull", "b/etc/hostname", "-")
	// The image says xxxx; each clone gets its own name.
	if got := e.ok("file", "pull", "a/etc/hostname", "-"); got != "a\n" {
		t.Fatalf("pulled %q", got)
	}
}

// A pull takes regular files only, and says at once what else it found:
// opening a FIFO would wait for a writer, and a device may act on open.
// Symlinks that stay inside the root are followed.
func TestPullOnlyRegularFiles(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t,
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "./etc/name", Linkname: "hostname"},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "./etc/pipe", Linkname: "../tmp/f"},
	)), "--alias", "tiny")
	e.ok("create", "tiny", "a")
	root := instanceRoot(t, e, "a")
	for p, mode := range map[string]uint32{"tmp/f": unix.S_IFIFO | 0o666, "tmp/s": unix.S_IFSOCK | 0o666, "tmp/b": unix.S_IFBLK | 0o600} {
		if err := unix.Mknod(filepath.Join(root, p), mode, int(unix.Mkdev(7, 0))); err != nil {
			t.Fatal(err)
		}
	}
	// A pull that waits on the FIFO gets a writer, and so fails the test
	// instead of hanging it.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if fd, err := unix.Open(filepath.Join(root, "tmp/f"), unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				unix.Close(fd)
			}
		}
	}()
	for _, c := range [][2]string{
		{"/tmp/f", "a FIFO"},
		{"/etc/pipe", "a FIFO"},
		{"/tmp/s", "a socket"},
		{"/tmp/b", "a block device"},
		{"/null", "a character device"},
		{"/etc", "a directory"},
	} {
		e.fails(2, fmt.Sprintf("pull %s: %s, not a regular file", c[0], c[1]), "file", "pull", "a"+c[0], "-")
	}
	if got := e.ok("file", "pull", "a/etc/name", "-"); got != "a\n" {
		t.Fatalf("pulled %q through a symlink", got)
	}
}

// Every kind of bad input gets one clear line, its own exit code, and
// leaves nothing behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t, "dir")
	good := rootfs(t)
	hostile := map[string][]byte{
		"truncated":     good[:len(good)/2],
		"corrupt":       append(append([]byte(nil), good[:20]...), bytes.Repeat([]byte{7}, 4000)...),
		"not a tarball": []byte(strings.Repeat("hello\n", 1000)),
	}
	for name, data := range testutil.TestdataFiles(t, "archive/hostile", "*.tar") {
		hostile[name] = data
	}
	for name, data := range hostile {
		t.Run(name, func(t *testing.T) {
			e.fails(2, "image", "image", "import", writeFile(t, data))
			e.fails(2, "image", "image", "import", "-") // nothing on stdin either
			r := e.runIn(data, "image", "import", "-")
			if r.code != 2 {
				t.Fatalf("import from stdin: exit %d", r.code)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(e.state, "images")); len(entries) != 0 {
		t.Fatalf("refused images left %d files", len(entries))
	}
	var imgs []any
	e.json(&imgs, "image", "list")
	if len(imgs) != 0 {
		t.Fatalf("refused images were recorded: %v", imgs)
	}

	img := writeFile(t, good)
	e.ok("image", "import", img, "--alias", "tiny")
	e.ok("create", "tiny", "a")
	e.fails(3, `image "nope" not found`, "create", "nope", "b")
	e.fails(3, `instance "nope" not found`, "delete", "nope")
	e.fails(3, `snapshot "s9" of instance "a" not found`, "snapshot", "restore", "a", "s9")
	e.fails(3, `pool "nope" not found`, "create", "tiny", "b", "--pool", "nope")
	e.fails(3, "image file", "image", "import", "/nonexistent.tar")
	e.fails(4, `instance "a" already exists`, "create", "tiny", "a")
	e.fails(4, `alias "tiny" already names`, "image", "import", writeFile(t, rootfs(t, &tar.Header{Typeflag: tar.TypeDir, Name: "x/", Mode: 0o755})), "--alias", "tiny")
	e.fails(2, "invalid instance name", "create", "tiny", "bad_name!")
	e.fails(2, "flag provided but not defined: -x", "create", "tiny", "-x")
	e.fails(2, "invalid snapshot name", "snapshot", "create", "a", "a/b")
	e.fails(2, "usage: silo create", "create", "tiny")
	e.fails(2, "invalid size", "pool", "create", "q", "--driver", "btrfs", "--size", "lots")
	e.fails(2, "unknown storage driver", "pool", "create", "q", "--driver", "ext9")
	e.fails(5, "in use by 1 instance", "image", "delete", "tiny")
	e.fails(5, "in use by 1 instance", "pool", "delete", "default")
	e.fails(2, "unknown format", "list", "--format", "yaml")
	e.consistent()
}

// Loop-backed pools come back after a reboot: the first command of a new
// boot mounts (imports) them again.
func TestPoolsComeBackAfterReboot(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
			e.ok("create", "tiny", "a", "--pool", e.pool)
			// A reboot: the pool is gone from the system, and the boot ID changes.
			s := openStore(t, e)
			err := s.Update(func(tx *store.Tx) error {
				p, err := tx.Pool(e.pool)
				if err != nil {
					return err
				}
				if driver == "btrfs" {
					err = exec.Command("umount", filepath.Join(e.state, "pools", p.ID)).Run()
				} else {
					err = exec.Command("zpool", "export", "silo-"+p.ID).Run()
				}
				p.Boot = "an earlier boot"
				return errors.Join(err, tx.PutPool(p))
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ok("file", "pull", "a/etc/hostname", "-"); got != "a\n" {
				t.Fatalf("after the reboot: %q", got)
			}
			e.consistent()
		})
	}
}

// A loop pool that silo made and that was unmounted behind its back (by
// an administrator, say) is mounted again by the next command that uses
// it, without a reboot.
func TestLoopPoolUnmountedBehindSilosBack(t *testing.T) {
	e := bootEnv(t, "btrfs")
	e.ok("create", "bb", "a", "--pool", e.pool)
	mnt := poolMountDir(t, e, e.pool)
	unmount := func() {
		t.Helper()
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
	}
	unmount()
	e.ok("list")
	e.ok("start", "a")
	if got := e.ok("exec", "a", "--", "hostname"); got != "a\n" {
		t.Fatalf("exec: %q", got)
	}
	e.ok("stop", "a", "--force")
	unmount()
	e.ok("snapshot", "create", "a", "s1")
	unmount()
	if got := e.ok("file", "pull", "a/etc/hostname", "-"); got != "a\n" {
		t.Fatalf("pulled %q", got)
	}
	e.consistent()
}

// A pool on a filesystem that silo did not mount is not silo's to mount:
// when it goes away, commands name the pool and say what to do, and work
// again once it is back.
func TestSourcePoolUnmounted(t *testing.T) {
	needDriver(t, "btrfs")
	dir := t.TempDir()
	disk, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	for _, c := range [][]string{{"truncate", "-s", "256M", disk}, {"mkfs.btrfs", "-q", disk}, {"mkdir", mnt}, {"mount", "-o", "loop", disk, mnt}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	// Registered before the env's teardown, so that it runs after it.
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	e := newEnv(t, "dir")
	e.ok("pool", "create", "fast", "--driver", "btrfs", "--source", mnt)
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok("create", "tiny", "a", "--pool", "fast")
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	want := fmt.Sprintf(`pool "fast" is not ready: %s is not mounted: mount it again, then retry`, mnt)
	for _, args := range [][]string{
		{"file", "pull", "a/etc/hostname", "-"},
		{"snapshot", "create", "a", "s1"},
		{"create", "tiny", "b", "--pool", "fast"},
	} {
		r := e.run(args...)
		if r.code != 7 || !strings.Contains(r.err, want) || strings.Contains(r.err, "volume") {
			t.Fatalf("silo %s: exit %d, %q; want exit 7 and %q", strings.Join(args, " "), r.code, r.err, want)
		}
	}
	if out, err := exec.Command("mount", "-o", "loop", disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	if got := e.ok("file", "pull", "a/etc/hostname", "-"); got != "a\n" {
		t.Fatalf("pulled %q once the pool was back", got)
	}
	e.consistent()
}

// poolMountDir is where silo mounts the loop file of pool name.
func poolMountDir(t *testing.T, e *env, name string) string {
	t.Helper()
	var mnt string
	err := openStore(t, e).View(func(tx *store.Tx) error {
		p, err := tx.Pool(name)
		if err == nil {
			mnt = filepath.Join(e.state, "pools", p.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mnt
}

// A pool too small for the image: a clear error, exit code 6, nothing left.
func TestPoolFull(t *testing.T) {
	e := newEnv(t, "btrfs")
	e.ok("pool", "create", "small", "--driver", "btrfs", "--size", "128MiB")
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	blob := make([]byte, 160<<20)
	rand.Read(blob)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blob", Mode: 0o644, Size: int64(len(blob))})
	tw.Write(blob)
	tw.Close()
	e.ok("image", "import", writeFile(t, b.Bytes()), "--alias", "big")
	e.fails(6, "the pool is full", "create", "big", "x", "--pool", "small")
	e.consistent()
	if on := e.bases("big"); len(on) != 0 {
		t.Fatalf("a failed unpack left a base volume on %v", on)
	}
}
