package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
)

// Every volume command through h2:POOL, and every network command
// through h2:NAME, each checked on h2 itself; the refusals carry the exit
// codes they have here; and the commands that do not reach remotes yet
// say so. h2's pool is btrfs, whose volumes take a size cap.
func TestRemoteVolumesAndNetworks(t *testing.T) {
	h1, h2 := newEnv(t, "dir"), bootEnv(t, "btrfs")
	s := servedPair(t, h1, h2)
	p := h2.pool
	r := "h2:" + p

	// Create, list, info, get.
	if out := h1.ok("volume", "create", r, "v1", "user.app=pg", "description=the data"); out != "Volume v1 created on pool "+p+"\n" {
		t.Fatalf("volume create h2: says %q", out)
	}
	if v := h2.volume(p, "v1"); v.Description != "the data" || v.Config["user.app"] != "pg" {
		t.Fatalf("v1 on h2: %+v", v)
	}
	h1.fails(4, `volume "v1" already exists in pool "`+p+`"`, "volume", "create", r, "v1")
	h1.fails(3, `pool "nopool" not found`, "volume", "create", "h2:nopool", "v2")
	h1.fails(2, "volume config size=", "volume", "create", r, "v2", "size=lots")
	h1.fails(2, `unknown volume config key "color"`, "volume", "create", r, "v2", "color=red")
	h1.fails(2, "usage: silo volume create", "volume", "create", "h2:", "v2")
	var here, there []api.StorageVolume
	h2.apiJSON(&here, "volume", "list")
	for _, ref := range []string{"h2:", r} {
		h1.apiJSON(&there, "volume", "list", ref)
		if len(there) != 1 || there[0].Name != "v1" || there[0].Pool != p || len(here) != 1 || there[0].CreatedAt != here[0].CreatedAt {
			t.Fatalf("volume list %s: %+v; on h2: %+v", ref, there, here)
		}
	}
	h1.apiJSON(&there, "volume", "list")
	if len(there) != 0 {
		t.Fatalf("h1's own volume list shows h2's: %+v", there)
	}
	h1.fails(3, `pool "nopool" not found`, "volume", "list", "h2:nopool")
	if out := h1.ok("volume", "info", r, "v1"); !strings.Contains(out, "the data") || !strings.Contains(out, "user.app=pg") {
		t.Fatalf("volume info %s v1:\n%s", r, out)
	}
	h1.fails(3, `volume "nothing" not found in pool "`+p+`"`, "volume", "info", r, "nothing")
	if got := h1.ok("volume", "get", r, "v1", "user.app"); got != "pg\n" {
		t.Fatalf("volume get user.app: %q", got)
	}
	if got := h1.ok("volume", "get", r, "v1", "description"); got != "the data\n" {
		t.Fatalf("volume get description: %q", got)
	}

	// Set and unset; a size caps the volume at once.
	h1.ok("volume", "set", r, "v1", "user.app=mysql", "size=64MiB")
	if v := h2.volume(p, "v1"); v.Config["user.app"] != "mysql" || v.Config["size"] != "64MiB" || v.State.Usage.Total != 64<<20 {
		t.Fatalf("v1 on h2 after set: %+v %+v", v.Config, v.State)
	}
	h1.fails(2, "volume config size=", "volume", "set", r, "v1", "size=lots")
	h1.fails(2, `unknown volume config key "color"`, "volume", "set", r, "v1", "color=red")
	h1.fails(3, `volume "nothing" not found`, "volume", "set", r, "nothing", "user.a=b")
	h1.ok("volume", "unset", r, "v1", "user.app", "size")
	h1.fails(3, `has no config key "user.app"`, "volume", "unset", r, "v1", "user.app")
	if v := h2.volume(p, "v1"); len(v.Config) != 0 || v.State.Usage.Total != 0 {
		t.Fatalf("v1 on h2 after unset: %+v %+v", v.Config, v.State)
	}

	// Snapshots: take, list, restore any, delete.
	writeVolumeFile(t, h2, p, "v1", "f", "one")
	if out := h1.ok("volume", "snapshot", "create", r, "v1", "s1"); out != "Snapshot v1/s1 created on pool "+p+"\n" {
		t.Fatalf("volume snapshot create: %q", out)
	}
	writeVolumeFile(t, h2, p, "v1", "f", "second")
	h1.ok("volume", "snapshot", "create", r, "v1")
	h1.ok("volume", "snapshot", "create", r, "v1", "s2", "--expiry", "2d")
	h1.fails(4, "already exists", "volume", "snapshot", "create", r, "v1", "s1")
	h1.fails(2, "not both", "volume", "snapshot", "create", r, "v1", "s3", "--expiry", "1d", "--no-expiry")
	h1.fails(3, `volume "nothing" not found`, "volume", "snapshot", "create", r, "nothing")
	var snaps, theirs []api.StorageVolumeSnapshot
	h1.apiJSON(&snaps, "volume", "snapshot", "list", r, "v1")
	h2.apiJSON(&theirs, "volume", "snapshot", "list", p, "v1")
	if !slices.Equal(volumeSnapshotNames(h2.volume(p, "v1")), []string{"s1", "snap0", "s2"}) || !slices.Equal(snaps, theirs) {
		t.Fatalf("volume snapshot list %s v1: %+v; on h2: %+v", r, snaps, theirs)
	}
	if left := time.Until(snaps[2].ExpiresAt); left < 47*time.Hour || left > 48*time.Hour || !snaps[0].ExpiresAt.IsZero() {
		t.Fatalf("expiries of v1's snapshots: %+v", snaps)
	}
	writeVolumeFile(t, h2, p, "v1", "f", "the third")
	h1.ok("volume", "snapshot", "restore", r, "v1", "s1")
	if got := volumeFile(t, h2, p, "v1", "f"); got != "one" {
		t.Fatalf("after a restore to s1 through h2:, f holds %q", got)
	}
	h1.ok("volume", "snapshot", "restore", r, "v1", "snap0")
	if got := volumeFile(t, h2, p, "v1", "f"); got != "second" {
		t.Fatalf("after a restore to snap0 through h2:, f holds %q", got)
	}
	h1.fails(3, `snapshot "nope" of volume "v1"`, "volume", "snapshot", "restore", r, "v1", "nope")
	h1.ok("volume", "snapshot", "delete", r, "v1", "snap0")
	if got := volumeSnapshotNames(h2.volume(p, "v1")); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("snapshots on h2 after a delete through h2: %v", got)
	}
	h1.fails(3, `snapshot "snap0" of volume "v1"`, "volume", "snapshot", "delete", r, "v1", "snap0")

	// Rename and delete, refused while an instance attaches the volume;
	// a restore, while a running one does.
	h1.ok("volume", "rename", r, "v1", "v2")
	h2.apiJSON(&here, "volume", "list")
	if len(here) != 1 || here[0].Name != "v2" || !slices.Equal(volumeSnapshotNames(here[0]), []string{"s1", "s2"}) {
		t.Fatalf("volumes on h2 after a rename through h2: %+v", here)
	}
	h1.fails(3, `volume "v1" not found`, "volume", "rename", r, "v1", "v3")
	h1.ok("volume", "create", r, "v3")
	h1.fails(4, `volume "v3" already exists`, "volume", "rename", r, "v2", "v3")
	h1.fails(2, "invalid volume name", "volume", "rename", r, "v2", "a/b")
	h2.ok(append([]string{"create", "bb", "web"}, h2.poolArgs()...)...)
	h1.ok("volume", "attach", r, "v2", "web", "/mnt")
	if d := h2.device("web", "v2"); d["pool"] != p || d["source"] != "v2" || d["path"] != "/mnt" {
		t.Fatalf("web's device v2 on h2 after an attach through h2: %v", d)
	}
	h1.fails(4, "already has a device v2", "volume", "attach", r, "v2", "h2:web", "/srv")
	h1.fails(2, "must be on the volume's host", "volume", "attach", "default", "v2", "h2:web", "/mnt")
	h1.fails(5, "attached to /1.0/instances/web", "volume", "delete", r, "v2")
	h1.fails(5, "attached to /1.0/instances/web", "volume", "rename", r, "v2", "v4")
	h2.ok("start", "web")
	h1.fails(5, "attached to running instance(s) web", "volume", "snapshot", "restore", r, "v2", "s1")
	h2.ok("stop", "web", "--force")
	h1.ok("volume", "detach", r, "v2", "h2:web")
	if d := h2.device("web", "v2"); d != nil {
		t.Fatalf("web's device v2 on h2 after a detach through h2: %v", d)
	}
	h1.fails(3, "has no disk of volume", "volume", "detach", r, "v2", "web")
	if out := h1.ok("volume", "delete", r, "v2"); out != "Volume v2 deleted from pool "+p+"\n" {
		t.Fatalf("volume delete h2: says %q", out)
	}
	h2.apiJSON(&here, "volume", "list")
	if len(here) != 1 || here[0].Name != "v3" {
		t.Fatalf("volumes on h2 after a delete through h2: %+v", here)
	}
	h1.fails(3, `volume "v2" not found`, "volume", "delete", r, "v2")

	// The API's writes hold to the ETag: a PUT replaces description and
	// config, a stale ETag is refused and changes nothing.
	ctx := context.Background()
	v, etag, err := s.c.Volume(ctx, p, "v3")
	if err != nil || etag == "" {
		t.Fatalf("GET v3: %v, ETag %q", err, etag)
	}
	if err := s.c.UpdateVolume(ctx, p, "v3", api.StorageVolumePut{Description: "new", Config: map[string]string{"user.b": "1"}}, etag); err != nil {
		t.Fatal(err)
	}
	failsWith(t, s.c.UpdateVolume(ctx, p, "v3", api.StorageVolumePut{Config: v.Config}, etag), http.StatusPreconditionFailed, "changed since")
	failsWith(t, s.c.PatchVolume(ctx, p, "v3", api.StorageVolumePut{Config: map[string]string{"user.c": "2"}}, etag), http.StatusPreconditionFailed, "changed since")
	if v := h2.volume(p, "v3"); v.Description != "new" || len(v.Config) != 1 || v.Config["user.b"] != "1" {
		t.Fatalf("v3 on h2 after a PUT and two stale writes: %q %+v", v.Description, v.Config)
	}
	_, etag, _ = s.c.Volume(ctx, p, "v3")
	if err := s.c.UpdateVolume(ctx, p, "v3", api.StorageVolumePut{}, etag); err != nil {
		t.Fatal(err)
	}
	if v := h2.volume(p, "v3"); v.Description != "" || len(v.Config) != 0 {
		t.Fatalf("v3 on h2 after an empty PUT: %q %+v", v.Description, v.Config)
	}
	h1.ok("volume", "delete", r, "v3")

	// Networks, in h2's network namespace: create, list, info, set,
	// unset, delete, and the refusals.
	if out := h1.ok("network", "create", "h2:n1", "ipv4.address=10.99.61.1/24", "ipv6.address=none", "ipv4.nat=false"); out != "Network n1 created\n" {
		t.Fatalf("network create h2: says %q", out)
	}
	n1 := func() api.Network {
		var n api.Network
		h2.json(&n, "network", "info", "n1")
		return n
	}
	if net := n1(); net.Config["ipv4.address"] != "10.99.61.1/24" || net.Status != "Created" {
		t.Fatalf("n1 on h2: %+v", net)
	}
	if out := h1.ok("network", "list"); strings.Contains(out, "n1") {
		t.Fatalf("h1's own network list shows h2's:\n%s", out)
	}
	if out := h1.ok("network", "list", "h2:"); !strings.Contains(out, "n1") {
		t.Fatalf("network list h2:\n%s", out)
	}
	if out := h1.ok("network", "info", "h2:n1"); !strings.Contains(out, "ipv4.address=10.99.61.1/24") {
		t.Fatalf("network info h2:n1:\n%s", out)
	}
	h1.fails(4, "already", "network", "create", "h2:n1")
	h1.fails(2, `unknown network config key "colour"`, "network", "create", "h2:n2", "colour=red")
	h1.fails(2, "overlaps network n1", "network", "create", "h2:n2", "ipv4.address=10.99.61.129/25")
	h1.ok("network", "set", "h2:n1", "dns.domain=lab")
	if net := n1(); net.Config["dns.domain"] != "lab" {
		t.Fatalf("n1 on h2 after set: %+v", net.Config)
	}
	h1.fails(2, `unknown network config key "colour"`, "network", "set", "h2:n1", "colour=red")
	h1.fails(2, "neither true nor false", "network", "set", "h2:n1", "ipv4.nat=maybe")
	h1.fails(2, `unknown network config key "colour"`, "network", "unset", "h2:n1", "colour")
	h1.fails(3, `network "nope" not found`, "network", "set", "h2:nope", "dns.domain=x")
	h1.fails(3, `network "nope" not found`, "network", "info", "h2:nope")
	h1.ok("network", "unset", "h2:n1", "dns.domain")
	if net := n1(); net.Config["dns.domain"] != "" {
		t.Fatalf("n1 on h2 after unset: %+v", net.Config)
	}
	// A network's writes hold to its ETag too.
	n, etag, err := s.c.Network(ctx, "n1")
	if err != nil || etag == "" {
		t.Fatalf("GET n1: %v, ETag %q", err, etag)
	}
	cfg := n.Config
	cfg["dns.domain"] = "put"
	if err := s.c.UpdateNetwork(ctx, "n1", api.NetworkPut{Config: cfg}, etag); err != nil {
		t.Fatal(err)
	}
	failsWith(t, s.c.PatchNetwork(ctx, "n1", api.NetworkPut{Config: map[string]string{"dns.domain": "stale"}}, etag), http.StatusPreconditionFailed, "changed since")
	if net := n1(); net.Config["dns.domain"] != "put" || net.Config["ipv4.address"] != "10.99.61.1/24" {
		t.Fatalf("n1 on h2 after a PUT and a stale PATCH: %+v", net.Config)
	}
	h2.ok("config", "device", "add", "web", "eth1", "nic", "network=n1")
	h1.fails(5, "in use by instance web", "network", "delete", "h2:n1")
	h2.ok("config", "device", "remove", "web", "eth1")
	if out := h1.ok("network", "delete", "h2:n1"); out != "Network n1 deleted\n" {
		t.Fatalf("network delete h2: says %q", out)
	}
	h2.fails(3, `network "n1" not found`, "network", "info", "n1")
	h1.fails(3, `network "n1" not found`, "network", "delete", "h2:n1")

	// Export and import through the remote: the volume comes back with
	// its snapshots; a bad file or name changes nothing there.
	dir := t.TempDir()
	file := filepath.Join(dir, "v7.backup")
	h1.ok("volume", "create", r, "v7")
	h1.ok("volume", "snapshot", "create", r, "v7", "k1")
	h1.ok("volume", "export", r, "v7", file)
	if out := h1.ok("volume", "import", r, "v8", file); out != "Volume v8 imported on pool "+p+", with 1 snapshot(s)\n" {
		t.Fatalf("volume import h2: says %q", out)
	}
	if got := volumeSnapshotNames(h2.volume(p, "v8")); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("snapshots of the volume imported on h2: %v", got)
	}
	h1.fails(3, `volume "nope" not found`, "volume", "export", r, "nope", filepath.Join(dir, "nope.backup"))
	if _, err := os.Stat(filepath.Join(dir, "nope.backup")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed export left its file: %v", err)
	}
	h1.fails(4, `volume "v8" already exists`, "volume", "import", r, "v8", file)
	h1.fails(2, "import volume v9", "volume", "import", r, "v9", writeFile(t, []byte("not a backup")))
	h2.fails(3, `volume "v9" not found`, "volume", "info", p, "v9")
	h1.ok("volume", "delete", r, "v7")
	h1.ok("volume", "delete", r, "v8")

	// What does not reach remotes yet says so, and does nothing.
	for _, argv := range [][]string{
		{"volume", "copy", r + "/v", "default/w"},
		{"volume", "copy", "default/v", r + "/w"},
	} {
		h1.fails(2, "does not reach remotes yet", argv...)
	}
}

// device is device dev of instance name on e, nil when it has none.
func (e *env) device(name, dev string) map[string]string {
	e.t.Helper()
	var inst api.Instance
	e.json(&inst, "info", name)
	return inst.Devices[dev]
}
