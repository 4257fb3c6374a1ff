package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/internal/units"
)

// A root disk's size caps what the instance writes: past it, writes fail
// inside while another instance on the pool writes on; the cap moves up
// and down on the running instance, not below what it holds; silo info
// shows it.
func TestQuotaRootDisk(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			var source string
			if driver == "dir" {
				source = ext4Loop(t, true)
			}
			e := bootEnv(t, driver)
			pool := e.pool
			if driver == "dir" {
				pool = "prj"
				e.ok("pool", "create", pool, "--driver", "dir", "--source", source)
			}
			e.ok("launch", "bb", "q", "--wait", "--pool", pool)
			e.ok("launch", "bb", "other", "--wait", "--pool", pool)
			e.ok("config", "device", "set", "q", "root", "size=64MiB")
			e.rootTotal("q", 64<<20)

			r := e.write("q", "/root/fill", 100)
			if r.code == 0 || !full(r.out) {
				t.Fatalf("writing 100MiB under a 64MiB cap: exit %d: %s", r.code, r.out)
			}
			if n := e.fileSize("q", "/root/fill"); n > 64<<20 {
				t.Fatalf("the instance wrote %d bytes under a cap of 64MiB", n)
			}
			if r := e.write("other", "/root/fill", 80); r.code != 0 {
				t.Fatalf("another instance on the pool cannot write: %s", r.out)
			}

			e.ok("config", "device", "set", "q", "root", "size=160MiB")
			e.rootTotal("q", 160<<20)
			if r := e.write("q", "/root/more", 40); r.code != 0 {
				t.Fatalf("after the cap went up, writing 40MiB: exit %d: %s", r.code, r.out)
			}
			e.fails(2, "is less than the", "config", "device", "set", "q", "root", "size=16MiB")
			e.rootTotal("q", 160<<20)
			e.sh("q", "rm -f /root/fill /root/more && sync")
			// zfs frees what was deleted a few transactions later.
			eventually(t, "the cap goes down to 48MiB once the files are gone", func() bool {
				return e.run("config", "device", "set", "q", "root", "size=48MiB").code == 0
			})
			if r := e.write("q", "/root/fill", 64); r.code == 0 || !full(r.out) {
				t.Fatalf("writing 64MiB once the cap went down to 48MiB: exit %d: %s", r.code, r.out)
			}
			e.ok("config", "device", "unset", "q", "root", "size")
			e.rootTotal("q", 0)
			if r := e.write("q", "/root/fill", 64); r.code != 0 {
				t.Fatalf("without a cap, writing 64MiB: exit %d: %s", r.code, r.out)
			}
			e.consistent()
		})
	}
}

// On btrfs, neither a subvolume made inside the instance nor snapshots
// make room past the cap.
func TestQuotaBtrfsNoEscape(t *testing.T) {
	e := bootEnv(t, "btrfs")
	e.launch("bb", "q")
	e.ok("config", "device", "set", "q", "root", "size=64MiB")

	// A subvolume of the instance's own, which a container can make.
	sub := filepath.Join(instanceRoot(t, e, "q"), "root", "sub")
	if out, err := exec.Command("btrfs", "subvolume", "create", sub).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v: %s", err, out)
	}
	if r := e.write("q", "/root/sub/fill", 100); r.code == 0 || !full(r.out) {
		t.Fatalf("writing 100MiB in a subvolume made inside: exit %d: %s", r.code, r.out)
	}
	e.sh("q", "rm -f /root/sub/fill && sync")

	// Write, snapshot, delete, write again: the snapshot keeps the first
	// write, and it stays charged.
	if r := e.write("q", "/root/a", 40); r.code != 0 {
		t.Fatalf("writing 40MiB under a 64MiB cap: %s", r.out)
	}
	e.ok("snapshot", "create", "q", "s1")
	e.sh("q", "rm /root/a && sync")
	if r := e.write("q", "/root/b", 40); r.code == 0 || !full(r.out) {
		t.Fatalf("after a snapshot kept 40MiB, writing 40MiB more: exit %d: %s", r.code, r.out)
	}
	e.sh("q", "rm -f /root/b && sync")
	e.ok("snapshot", "delete", "q", "s1")
	// btrfs frees a deleted subvolume's extents in the background.
	pool := filepath.Dir(filepath.Dir(instanceRoot(t, e, "q")))
	if out, err := exec.Command("btrfs", "subvolume", "sync", pool).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume sync: %v: %s", err, out)
	}
	if r := e.write("q", "/root/b", 40); r.code != 0 {
		t.Fatalf("once the snapshot is gone, writing 40MiB: exit %d: %s", r.code, r.out)
	}
}

// A cap where the filesystem cannot keep one is refused, with why.
func TestQuotaDirNoProjectQuotas(t *testing.T) {
	source := ext4Loop(t, false)
	e := bootEnv(t, "dir")
	e.ok("pool", "create", "plain", "--driver", "dir", "--source", source)
	e.ok("create", "bb", "q", "--pool", "plain")
	e.fails(2, "pool plain: its filesystem has no project quotas", "config", "device", "set", "q", "root", "size=64MiB")
	e.rootTotal("q", 0)
	e.ok("start", "q")
	e.consistent()
}

// ext4Loop mounts a new ext4 filesystem, with project quotas on when
// prj is set, and returns its mount point.
func ext4Loop(t *testing.T, prj bool) string {
	testutil.NeedRoot(t, "mounting a filesystem")
	testutil.NeedCommand(t, "mkfs.ext4")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	mkfs, opts := []string{"-q", "-F"}, "loop"
	if prj {
		mkfs, opts = append(mkfs, "-O", "quota,project"), "loop,prjquota"
	}
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", append(mkfs, img)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", opts, img, mnt).CombinedOutput(); err != nil {
		// A kernel without CONFIG_QFMT_V2 mounts no ext4 with quotas.
		kmsg, _ := exec.Command("dmesg").Output()
		lines := strings.Split(strings.TrimSpace(string(kmsg)), "\n")
		if last := lines[len(lines)-1]; prj && strings.Contains(last, "CONFIG_QUOTA") {
			t.Skipf("this kernel cannot mount ext4 with project quotas: %s", last)
		}
		t.Fatalf("mount -o %s: %v: %s", opts, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// write writes mib MiB of random bytes to path in instance name; the
// output holds dd's messages.
func (e *env) write(name, path string, mib int) result {
	e.t.Helper()
	return e.run("exec", name, "--", "sh", "-c", fmt.Sprintf("dd if=/dev/urandom of=%s bs=1M count=%d 2>&1 && sync", path, mib))
}

// full says whether dd's messages say the disk or the quota is full.
func full(out string) bool {
	return strings.Contains(out, "No space left on device") || strings.Contains(out, "Disk quota exceeded")
}

func (e *env) fileSize(name, path string) int64 {
	e.t.Helper()
	var n int64
	if _, err := fmt.Sscan(e.sh(name, "stat -c %s "+path), &n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// rootTotal checks the cap silo info shows on the root disk of name.
func (e *env) rootTotal(name string, want int64) {
	e.t.Helper()
	d := e.rootDisk(name)
	if d.Total != want || d.Usage <= 0 {
		e.t.Fatalf("silo info %s: root disk %+v, want total %d", name, d, want)
	}
}

// A kill -9 at any step of a change of size leaves the cap the records
// say, on a running instance.
func TestQuotaCrash(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.launch("bb", "r")
			e.ok("config", "device", "set", "r", "root", "size=64MiB")
			size := func(n int) int64 { return int64(64+n) << 20 }
			cases := []crashCase{{
				name: "size", kind: "update", steps: []string{"begun", "resized", "applied", "committed"}, done: []string{"committed"},
				cmd: func(n int) []string {
					return []string{"config", "device", "set", "r", "root", fmt.Sprintf("size=%d", size(n))}
				},
				state: func(e *env, n int) bool { return e.rootDisk("r").Total == size(n) },
			}}
			runCrashes(t, e, cases, func(e *env) {
				var info api.Instance
				e.apiJSON(&info, "info", "r")
				want, err := units.ParseSize(info.ExpandedDevices[api.RootDevice]["size"])
				if err != nil || info.State.Disk[api.RootDevice].Total != want {
					e.t.Fatalf("the records say size=%s, the pool has a cap of %d", info.ExpandedDevices[api.RootDevice]["size"], info.State.Disk[api.RootDevice].Total)
				}
			})
		})
	}
}

func (e *env) rootDisk(name string) api.InstanceStateDisk {
	e.t.Helper()
	var info api.Instance
	e.apiJSON(&info, "info", name)
	return info.State.Disk[api.RootDevice]
}
