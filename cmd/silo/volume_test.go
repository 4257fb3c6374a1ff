package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
)

// volumePool is the pool the env's instances go to, by name.
func (e *env) volumePool() string {
	if e.pool == "" {
		return "default"
	}
	return e.pool
}

// volumeRoot is the directory on the host of custom volume name's head.
func volumeRoot(t *testing.T, e *env, pool, name string) string {
	t.Helper()
	return volumeDir(t, e, func(tx *store.Tx) (string, string, error) {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return "", "", err
		}
		return v.Pool, v.Volume, nil
	})
}

func (e *env) volume(pool, name string) api.StorageVolume {
	e.t.Helper()
	var v api.StorageVolume
	e.apiJSON(&v, "volume", "info", pool, name)
	return v
}

func volumeSnapshotNames(v api.StorageVolume) []string {
	var out []string
	for _, s := range v.Snapshots {
		out = append(out, s.Name)
	}
	return out
}

// writeVolumeFile writes a file into a custom volume's head from the host.
func writeVolumeFile(t *testing.T, e *env, pool, name, file, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(volumeRoot(t, e, pool, name), file), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// volumeFile reads a file of a custom volume's head from the host; "" if
// there is none.
func volumeFile(t *testing.T, e *env, pool, name, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(volumeRoot(t, e, pool, name), file))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The life of custom volumes and their snapshots on every driver: create,
// list, snapshot, restore any snapshot keeping the others, export and
// import in both forms, rename, delete; and the refusals, each one line.
func TestVolumes(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			p := e.volumePool()
			e.ok("volume", "create", p, "data", "description=the database", "user.app=pg")
			e.fails(4, `volume "data" already exists in pool "`+p+`"`, "volume", "create", p, "data")
			e.fails(2, "invalid volume name", "volume", "create", p, "a/b")
			e.fails(2, `unknown volume config key "color"`, "volume", "create", p, "v2", "color=red")
			e.fails(2, "volume config size=", "volume", "create", p, "v2", "size=lots")
			e.fails(3, `pool "nopool" not found`, "volume", "create", "nopool", "v2")
			e.fails(3, `volume "nothing" not found in pool "`+p+`"`, "volume", "info", p, "nothing")

			v := e.volume(p, "data")
			if v.Description != "the database" || v.Config["user.app"] != "pg" || v.Type != "custom" || v.State == nil || len(v.UsedBy) != 0 {
				t.Fatalf("volume info: %+v", v)
			}
			var list []api.StorageVolume
			e.apiJSON(&list, "volume", "list", p)
			if len(list) != 1 || list[0].Name != "data" {
				t.Fatalf("volume list: %+v", list)
			}
			if got := e.get("volume", "get", p, "data", "user.app"); got != "pg" {
				t.Fatalf("volume get user.app: %q", got)
			}
			e.ok("volume", "set", p, "data", "user.app=mysql")
			e.ok("volume", "unset", p, "data", "user.app")
			e.fails(3, `has no config key "user.app"`, "volume", "unset", p, "data", "user.app")
			if v := e.volume(p, "data"); v.Config["user.app"] != "" {
				t.Fatalf("after unset: %+v", v.Config)
			}

			// Snapshots: restore any of them, and every one stays. Each
			// write changes the size of f: the portable export tells files
			// apart by size and mtime, and zfs-fuse keeps whole seconds.
			writeVolumeFile(t, e, p, "data", "f", "one")
			e.ok("volume", "snapshot", "create", p, "data", "s1")
			writeVolumeFile(t, e, p, "data", "f", "second")
			e.ok("volume", "snapshot", "create", p, "data")
			e.fails(4, "already exists", "volume", "snapshot", "create", p, "data", "s1")
			writeVolumeFile(t, e, p, "data", "f", "the third")
			e.ok("volume", "snapshot", "restore", p, "data", "s1")
			if got := volumeFile(t, e, p, "data", "f"); got != "one" {
				t.Fatalf("after a restore to s1, f holds %q", got)
			}
			e.ok("volume", "snapshot", "restore", p, "data", "snap0")
			if got := volumeFile(t, e, p, "data", "f"); got != "second" {
				t.Fatalf("after a restore to the newer snap0, f holds %q", got)
			}
			if got := volumeSnapshotNames(e.volume(p, "data")); !slices.Equal(got, []string{"s1", "snap0"}) {
				t.Fatalf("snapshots after two restores: %v", got)
			}
			e.fails(3, `snapshot "nope" of volume "data"`, "volume", "snapshot", "restore", p, "data", "nope")
			e.consistent()

			// Export and import, portable and optimized; snapshots come along.
			dir := t.TempDir()
			for i, form := range [][]string{nil, {"--optimized"}} {
				file := filepath.Join(dir, fmt.Sprintf("data%d.tar.zst", i))
				e.ok(append([]string{"volume", "export", p, "data", file}, form...)...)
				name := fmt.Sprintf("copy%d", i)
				e.ok("volume", "import", p, name, file)
				c := e.volume(p, name)
				if got := volumeSnapshotNames(c); !slices.Equal(got, []string{"s1", "snap0"}) || c.Description != "the database" {
					t.Fatalf("imported %s: %+v", name, c)
				}
				if got := volumeFile(t, e, p, name, "f"); got != "second" {
					t.Fatalf("imported %s: f holds %q", name, got)
				}
				e.ok("volume", "snapshot", "restore", p, name, "s1")
				if got := volumeFile(t, e, p, name, "f"); got != "one" {
					t.Fatalf("imported %s restored to s1: f holds %q", name, got)
				}
			}
			// A bad backup: one line, nothing left behind.
			good, err := os.ReadFile(filepath.Join(dir, "data0.tar.zst"))
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(dir, "bad.tar.zst")
			if err := os.WriteFile(bad, good[:len(good)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			e.fails(2, "", "volume", "import", p, "broken", bad)
			e.fails(3, `volume "broken" not found`, "volume", "info", p, "broken")
			// An instance's backup is not a volume's, nor the other way.
			e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
			e.ok(append([]string{"create", "tiny", "inst"}, e.poolArgs()...)...)
			instBackup := filepath.Join(dir, "inst.tar.zst")
			e.ok("export", "inst", "-o", instBackup)
			e.fails(2, "not a custom volume", "volume", "import", p, "x", instBackup)
			e.fails(2, "not an instance", "import", filepath.Join(dir, "data0.tar.zst"), "x")
			e.consistent()

			e.ok("volume", "rename", p, "copy1", "renamed")
			e.fails(4, "already exists", "volume", "rename", p, "renamed", "copy0")
			e.ok("volume", "snapshot", "delete", p, "renamed", "s1")
			if got := volumeSnapshotNames(e.volume(p, "renamed")); !slices.Equal(got, []string{"snap0"}) {
				t.Fatalf("snapshots after a delete: %v", got)
			}

			// Attached (a profile's disk names it): no delete, no rename.
			attach := func(on bool) {
				err := openStore(t, e).Update(func(tx *store.Tx) error {
					pr, err := tx.Profile(store.DefaultProfile)
					if err != nil {
						return err
					}
					if on {
						pr.Devices["data"] = store.Device{"type": "disk", "pool": p, "source": "data", "path": "/data"}
					} else {
						delete(pr.Devices, "data")
					}
					return tx.PutProfile(pr)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			attach(true)
			defer attach(false)
			// The instance has it through its profile.
			if v := e.volume(p, "data"); !slices.Equal(v.UsedBy, []string{api.Path("instances", "inst"), api.Path("profiles", "default")}) {
				t.Fatalf("used by: %v", v.UsedBy)
			}
			e.fails(5, "is attached to /1.0/instances/inst, /1.0/profiles/default: detach it before you delete it", "volume", "delete", p, "data")
			e.fails(5, "detach it before you rename it", "volume", "rename", p, "data", "other")
			attach(false)

			e.ok("delete", "inst")
			e.fails(5, "custom volume(s)", "pool", "delete", p)
			for _, name := range []string{"data", "copy0", "renamed"} {
				e.ok("volume", "delete", p, name)
			}
			e.fails(3, "not found", "volume", "delete", p, "data")
			e.consistent()
		})
	}
}

// get runs a silo command and returns its output less the last newline.
func (e *env) get(args ...string) string {
	e.t.Helper()
	out := e.ok(args...)
	if n := len(out); n > 0 && out[n-1] == '\n' {
		out = out[:n-1]
	}
	return out
}

// A custom volume's size= caps what it holds: past it, writes fail, on
// every driver; the cap moves up and down, not below what the volume
// holds; volume info shows it.
func TestVolumeQuota(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			var source string
			if driver == "dir" {
				source = ext4Loop(t, true)
			}
			e := newEnv(t, driver)
			p := e.volumePool()
			if driver == "dir" {
				p = "prj"
				e.ok("pool", "create", p, "--driver", "dir", "--source", source)
			}
			e.ok("volume", "create", p, "q", "size=32MiB")
			e.volumeTotal(p, "q", 32<<20)
			if out, err := writeUnprivileged(volumeRoot(t, e, p, "q"), "fill", 64); err == nil || !full(out) {
				t.Fatalf("writing 64MiB into a 32MiB volume: %v: %s", err, out)
			}
			e.fails(2, "is less than the", "volume", "set", p, "q", "size=1MiB")
			e.volumeTotal(p, "q", 32<<20)
			e.ok("volume", "set", p, "q", "size=128MiB")
			e.volumeTotal(p, "q", 128<<20)
			if out, err := writeUnprivileged(volumeRoot(t, e, p, "q"), "fill", 64); err != nil {
				t.Fatalf("writing 64MiB once the cap went up to 128MiB: %v: %s", err, out)
			}
			e.ok("volume", "unset", p, "q", "size")
			e.volumeTotal(p, "q", 0)
			e.consistent()
		})
	}
}

// A cap where the filesystem cannot keep one is refused, with why, and
// no volume is left.
func TestVolumeQuotaDirNoProjectQuotas(t *testing.T) {
	source := ext4Loop(t, false)
	e := newEnv(t, "dir")
	e.ok("pool", "create", "plain", "--driver", "dir", "--source", source)
	e.fails(2, "pool plain: its filesystem has no project quotas", "volume", "create", "plain", "q", "size=64MiB")
	e.fails(3, "not found", "volume", "info", "plain", "q")
	e.ok("volume", "create", "plain", "q")
	e.fails(2, "pool plain: its filesystem has no project quotas", "volume", "set", "plain", "q", "size=64MiB")
	if v := e.volume("plain", "q"); v.Config["size"] != "" {
		t.Fatalf("a refused size stayed in the config: %v", v.Config)
	}
	e.consistent()
}

func (e *env) volumeTotal(pool, name string, want int64) {
	e.t.Helper()
	if v := e.volume(pool, name); v.State == nil || v.State.Usage.Total != want {
		e.t.Fatalf("volume %s: state %+v, want total %d", name, v.State, want)
	}
}

// writeUnprivileged writes mib MiB into dir/file from the host, without
// the capability that lets root write past a quota, as an instance would.
func writeUnprivileged(dir, file string, mib int) (string, error) {
	out, err := exec.Command("setpriv", "--bounding-set", "-sys_resource", "--inh-caps", "-sys_resource", "--",
		"sh", "-c", fmt.Sprintf("dd if=/dev/urandom of=%s bs=1M count=%d 2>&1 && sync", filepath.Join(dir, file), mib)).CombinedOutput()
	return string(out), err
}
