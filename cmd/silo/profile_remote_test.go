package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// Every profile command through h2:PROFILE, the device commands of
// profiles and instances through h2:NAME, config get and pool info
// through h2:, each checked on h2 itself: the output is what h2 prints
// of itself, and the refusals carry the exit codes they have here and
// change nothing.
func TestRemoteProfiles(t *testing.T) {
	h1, h2 := newEnv(t, "dir"), bootEnv(t, "dir")
	s := servedPair(t, h1, h2)
	h2.ok("create", "bb", "web")
	profile := func(name string) api.Profile {
		t.Helper()
		var p api.Profile
		h2.apiJSON(&p, "profile", "show", name)
		return p
	}
	// same runs a command through h2: and on h2 itself, and wants one
	// output of both.
	same := func(argv []string, i int) string {
		t.Helper()
		here := slices.Clone(argv)
		argv[i] = "h2:" + argv[i]
		there, want := h1.ok(argv...), h2.ok(here...)
		if there != want {
			t.Fatalf("silo %v through h2 prints\n%s\nand on h2\n%s", argv, there, want)
		}
		return there
	}

	// Create, list, show.
	if out := h1.ok("profile", "create", "h2:p1", "--description", "web servers"); out != "Profile p1 created\n" {
		t.Fatalf("profile create h2:p1 says %q", out)
	}
	if p := profile("p1"); p.Description != "web servers" {
		t.Fatalf("p1 on h2: %+v", p)
	}
	h1.fails(4, `profile "p1" already exists`, "profile", "create", "h2:p1")
	h1.fails(2, "invalid profile name", "profile", "create", "h2:a/b")
	if out := h1.ok("profile", "list", "h2:"); !strings.Contains(out, "p1") || !strings.Contains(out, "web servers") {
		t.Fatalf("profile list h2:\n%s", out)
	}
	if out := h1.ok("profile", "list"); strings.Contains(out, "p1") {
		t.Fatalf("h1's own profile list shows h2's:\n%s", out)
	}
	h1.fails(3, "not found", "profile", "show", "h2:nope")

	// Set and unset config keys.
	h1.ok("profile", "set", "h2:p1", "limits.cpu=1", "user.role=web")
	if p := profile("p1"); !maps.Equal(p.Config, map[string]string{"limits.cpu": "1", "user.role": "web"}) {
		t.Fatalf("p1 on h2 after set: %+v", p.Config)
	}
	h1.fails(2, `unknown config key "color"`, "profile", "set", "h2:p1", "color=red")
	h1.fails(2, `unknown config key "color"`, "profile", "unset", "h2:p1", "color")
	h1.fails(2, "limits.cpu", "profile", "set", "h2:p1", "limits.cpu=lots")
	h1.fails(3, "not found", "profile", "set", "h2:nope", "user.a=b")
	h1.fails(2, "usage: silo profile set", "profile", "set", "h2:p1")
	h1.ok("profile", "unset", "h2:p1", "user.role")
	if p := profile("p1"); !maps.Equal(p.Config, map[string]string{"limits.cpu": "1"}) {
		t.Fatalf("p1 on h2 after unset: %+v", p.Config)
	}

	// A profile's devices.
	if out := h1.ok("profile", "device", "add", "h2:p1", "http", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80"); out != "Device http added to profile p1\n" {
		t.Fatalf("profile device add h2:p1 says %q", out)
	}
	if d := profile("p1").Devices["http"]; d["type"] != "proxy" || d["listen"] != "tcp:0.0.0.0:8080" {
		t.Fatalf("http of p1 on h2: %+v", d)
	}
	h1.fails(4, "profile p1 already has a device http", "profile", "device", "add", "h2:p1", "http", "proxy", "listen=tcp:0.0.0.0:8081", "connect=tcp:127.0.0.1:81")
	h1.fails(2, "", "profile", "device", "add", "h2:p1", "odd", "bogus")
	h1.fails(2, "its type stays", "profile", "device", "set", "h2:p1", "http", "type=nic")
	h1.fails(3, "profile p1 has no device nope", "profile", "device", "set", "h2:p1", "nope", "listen=tcp:0.0.0.0:1")
	h1.fails(3, "not found", "profile", "device", "add", "h2:nope", "http", "proxy", "listen=tcp:0.0.0.0:8080", "connect=tcp:127.0.0.1:80")
	h1.ok("profile", "device", "set", "h2:p1", "http", "listen=tcp:0.0.0.0:8088")
	if d := profile("p1").Devices["http"]; d["listen"] != "tcp:0.0.0.0:8088" || d["connect"] != "tcp:127.0.0.1:80" {
		t.Fatalf("http of p1 on h2 after set: %+v", d)
	}
	same([]string{"profile", "device", "show", "p1"}, 3)
	if out := same([]string{"profile", "device", "list", "p1"}, 3); out != "http\n" {
		t.Fatalf("profile device list h2:p1: %q", out)
	}
	if p := profile("p1"); len(p.Devices) != 1 || p.Config["limits.cpu"] != "1" {
		t.Fatalf("p1 on h2 after the refusals: %+v", p)
	}
	same([]string{"profile", "show", "p1"}, 2)

	// Edit from stdin replaces the profile whole; YAML that does not read
	// changes nothing.
	yaml := "description: edited\nconfig:\n  limits.cpu: \"2\"\ndevices:\n  http:\n    type: proxy\n    listen: tcp:0.0.0.0:8080\n    connect: tcp:127.0.0.1:80\n"
	if r := h1.runIn([]byte(yaml), "profile", "edit", "h2:p1"); r.code != 0 {
		t.Fatalf("profile edit h2:p1: exit %d: %s", r.code, r.err)
	}
	if p := profile("p1"); p.Description != "edited" || !maps.Equal(p.Config, map[string]string{"limits.cpu": "2"}) || p.Devices["http"]["listen"] != "tcp:0.0.0.0:8080" {
		t.Fatalf("p1 on h2 after edit: %+v", p)
	}
	for _, bad := range []string{"config: [", "config:\n  color: red\n", "devices:\n  x:\n    type: bogus\n"} {
		if r := h1.runIn([]byte(bad), "profile", "edit", "h2:p1"); r.code != 2 || strings.Count(r.err, "\n") != 1 {
			t.Fatalf("profile edit h2:p1 with %q: exit %d, %q", bad, r.code, r.err)
		}
	}
	if p := profile("p1"); p.Description != "edited" || len(p.Devices) != 1 {
		t.Fatalf("p1 on h2 after refused edits: %+v", p)
	}

	// Edit on a terminal writes with the ETag of what the editor showed:
	// a write on h2 while the editor is open refuses it (busy), and the
	// edit changes nothing.
	base := slices.Clip(h1.extra)
	editor := func(name, meanwhile string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		script := "#!/bin/sh\nset -e\n" + meanwhile + "sed -i 's/^description: .*/description: by the editor/' \"$1\"\n"
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		h1.extra = append(base, "EDITOR="+path)
	}
	editor("racing", "SILO_STATE_DIR="+h2.state+" "+siloBin+" profile set p1 user.between=editor\n")
	_, out, cmd := h1.onTerminal(80, 24, "profile", "edit", "h2:p1")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 5 {
		t.Fatalf("profile edit h2:p1 across a write on h2: %v", err)
	}
	waitOutput(t, out, "changed since its ETag", nil)
	if p := profile("p1"); p.Description != "edited" || p.Config["user.between"] != "editor" {
		t.Fatalf("p1 on h2 after an edit refused by its ETag: %+v", p)
	}
	editor("alone", "")
	if _, _, cmd := h1.onTerminal(80, 24, "profile", "edit", "h2:p1"); cmd.Wait() != nil {
		t.Fatalf("profile edit h2:p1 on a terminal: exit %d", cmd.ProcessState.ExitCode())
	}
	if p := profile("p1"); p.Description != "by the editor" || p.Config["user.between"] != "editor" {
		t.Fatalf("p1 on h2 after an edit on a terminal: %+v", p)
	}
	h1.extra = base
	h1.ok("profile", "unset", "h2:p1", "user.between")

	// Copy, on h2 only.
	h1.ok("profile", "copy", "h2:p1", "h2:p2")
	h1.ok("profile", "copy", "h2:p1", "p3")
	for _, name := range []string{"p2", "p3"} {
		if p := profile(name); p.Description != "by the editor" || p.Config["limits.cpu"] != "2" || len(p.Devices) != 1 {
			t.Fatalf("%s on h2, a copy of p1: %+v", name, p)
		}
	}
	h1.fails(4, `profile "p2" already exists`, "profile", "copy", "h2:p1", "p2")
	h1.fails(3, "not found", "profile", "copy", "h2:nope", "p4")
	h1.fails(3, "not found", "profile", "show", "p3")
	h1.fails(2, "invalid profile name", "profile", "copy", "h2:p1", "h2:a/b")

	// Copy between hosts, either way, made whole on the other or not at
	// all.
	h1.ok("profile", "copy", "h2:p1", "local:p4")
	var p4 api.Profile
	h1.apiJSON(&p4, "profile", "show", "p4")
	if p1 := profile("p1"); p4.Description != p1.Description || !maps.Equal(p4.Config, p1.Config) || p4.Devices["http"]["listen"] != "tcp:0.0.0.0:8080" {
		t.Fatalf("p4 here, a copy of h2's p1: %+v", p4)
	}
	h1.fails(4, `profile "p4" already exists`, "profile", "copy", "h2:p1", "local:p4")
	h1.fails(3, "not found", "profile", "copy", "h2:nope", "local:p6")
	h1.ok("profile", "set", "p4", "user.here=1")
	h1.ok("profile", "copy", "p4", "h2:")
	if p := profile("p4"); p.Config["user.here"] != "1" || p.Description != p4.Description || len(p.Devices) != 1 {
		t.Fatalf("p4 on h2, a copy of this host's: %+v", p)
	}
	h1.fails(4, `profile "p1" already exists`, "profile", "copy", "p4", "h2:p1")
	// A disk whose source h2 lacks (gone since it was added here).
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	h1.ok("profile", "device", "add", "p4", "data", "disk", "source="+gone, "path=/mnt")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	h1.fails(3, "no such directory on the host", "profile", "copy", "p4", "h2:p6")
	h1.fails(3, "not found", "profile", "show", "h2:p6")
	h2.ok("profile", "delete", "p4")

	// Assign, which the instance follows.
	h1.ok("profile", "assign", "h2:web", "default,p2")
	// webConfig is web's config on h2.
	webConfig := func() (cfg instanceConfig) {
		t.Helper()
		h2.json(&cfg, "config", "show", "web")
		return cfg
	}
	cfg := webConfig()
	if !slices.Equal(cfg.Profiles, []string{"default", "p2"}) {
		t.Fatalf("web's profiles on h2 after assign: %v", cfg.Profiles)
	}
	h1.fails(3, "nope", "profile", "assign", "h2:web", "default,nope")
	h1.fails(3, "not found", "profile", "assign", "h2:nothing", "default")
	cfg = webConfig()
	if !slices.Equal(cfg.Profiles, []string{"default", "p2"}) {
		t.Fatalf("web's profiles on h2 after a refused assign: %v", cfg.Profiles)
	}

	// Rename, which the instances that apply the profile follow.
	h1.ok("profile", "rename", "h2:p2", "p5")
	cfg = webConfig()
	if !slices.Equal(cfg.Profiles, []string{"default", "p5"}) {
		t.Fatalf("web's profiles on h2 after rename: %v", cfg.Profiles)
	}
	h1.fails(3, "not found", "profile", "show", "h2:p2")
	h1.fails(4, `profile "p1" already exists`, "profile", "rename", "h2:p5", "p1")
	h1.fails(3, "not found", "profile", "rename", "h2:nope", "p6")
	h1.fails(2, "default profile keeps its name", "profile", "rename", "h2:default", "p6")
	h1.fails(2, "a rename stays on one host", "profile", "rename", "h2:p5", "local:p6")

	// A disk whose source is not there is refused through h2: as on h2,
	// in its words (the server names the profile too).
	for _, argv := range [][]string{
		{"config", "device", "add", "web", "data", "disk", "source=/nonexistent/silo", "path=/mnt"},
		{"profile", "device", "add", "p1", "data", "disk", "source=/nonexistent/silo", "path=/mnt"},
	} {
		here := h2.run(argv...)
		argv[3] = "h2:" + argv[3]
		if there := h1.run(argv...); here.code == 0 || there.code != here.code || !strings.Contains(there.err, strings.TrimPrefix(here.err, "silo: error: ")) {
			t.Fatalf("silo %v: through h2 exit %d %q, on h2 exit %d %q", argv, there.code, there.err, here.code, here.err)
		}
	}
	if cfg, p := webConfig(), profile("p1"); cfg.Devices["data"] != nil || p.Devices["data"] != nil {
		t.Fatalf("a refused disk is on h2: web %+v, p1 %+v", cfg.Devices, p.Devices)
	}

	// An instance's devices: its own, and an override of one its
	// profiles give it.
	if out := h1.ok("config", "device", "add", "h2:web", "admin", "proxy", "listen=tcp:0.0.0.0:9090", "connect=tcp:127.0.0.1:90"); out != "Device admin added to instance web\n" {
		t.Fatalf("config device add h2:web says %q", out)
	}
	cfg = webConfig()
	if cfg.Devices["admin"]["listen"] != "tcp:0.0.0.0:9090" {
		t.Fatalf("web's devices on h2: %+v", cfg.Devices)
	}
	h1.fails(4, "instance web already has a device admin", "config", "device", "add", "h2:web", "admin", "proxy", "listen=tcp:0.0.0.0:9091", "connect=tcp:127.0.0.1:91")
	h1.fails(2, "", "config", "device", "add", "h2:web", "odd", "bogus")
	h1.fails(3, "instance web has no device nope", "config", "device", "remove", "h2:web", "nope")
	h1.fails(2, "comes from its profiles", "config", "device", "remove", "h2:web", "http")
	h1.ok("config", "device", "set", "h2:web", "http", "listen=tcp:0.0.0.0:8090")
	cfg = webConfig()
	if d := cfg.Devices["http"]; d["listen"] != "tcp:0.0.0.0:8090" || d["connect"] != "tcp:127.0.0.1:80" || d["type"] != "proxy" {
		t.Fatalf("web's override of http on h2: %+v", cfg.Devices)
	}
	same([]string{"config", "device", "show", "web"}, 3)
	if out := same([]string{"config", "device", "list", "web"}, 3); out != "admin\nhttp\n" {
		t.Fatalf("config device list h2:web: %q", out)
	}
	if out := h1.ok("config", "device", "remove", "h2:web", "admin", "http"); out != "Device admin removed from instance web\nDevice http removed from instance web\n" {
		t.Fatalf("config device remove h2:web says %q", out)
	}
	cfg = webConfig()
	if len(cfg.Devices) != 0 {
		t.Fatalf("web's own devices on h2 after remove: %+v", cfg.Devices)
	}

	// A device edit writes back with the ETag of its read: a write on h2
	// between the two refuses it (as busy), and it changes nothing.
	rp := remoteProfiles{s.c}
	for _, o := range []engine.Owner{{Name: "web"}, {Profile: true, Name: "p1"}} {
		err := rp.editDevices(context.Background(), o, func(own, _ store.Devices) error {
			if o.Profile {
				h2.ok("profile", "set", "p1", "user.between=1")
			} else {
				h2.ok("config", "set", "web", "user.between=1")
			}
			own["late"] = store.Device{"type": "none"}
			return nil
		})
		if !errors.Is(err, errkind.Busy) || !strings.Contains(err.Error(), "changed since its ETag") {
			t.Fatalf("a device edit of %s across a write: %v", o, err)
		}
	}
	if cfg, p := webConfig(), profile("p1"); cfg.Devices["late"] != nil || p.Devices["late"] != nil || cfg.Config["user.between"] != "1" || p.Config["user.between"] != "1" {
		t.Fatalf("after device edits refused by their ETags, on h2 web: %+v; p1: %+v", cfg, p)
	}

	// Delete, refused while an instance applies the profile.
	h1.fails(5, `profile "p5" is used by instance web`, "profile", "delete", "h2:p5")
	h1.fails(2, "default profile cannot be deleted", "profile", "delete", "h2:default")
	h1.fails(2, "instance web has no root disk", "profile", "assign", "h2:web", "")
	h1.ok("profile", "assign", "h2:web", "default")
	if cfg = webConfig(); !slices.Equal(cfg.Profiles, []string{"default"}) {
		t.Fatalf("web's profiles on h2 after assigning default: %v", cfg.Profiles)
	}
	if out := h1.ok("profile", "delete", "h2:p5"); out != "Profile p5 deleted\n" {
		t.Fatalf("profile delete h2:p5 says %q", out)
	}
	h2.fails(3, "not found", "profile", "show", "p5")
	h1.fails(3, "not found", "profile", "delete", "h2:p5")

	// config get and pool info.
	h1.ok("config", "set", "h2:web", "limits.memory=128MiB")
	if out := same([]string{"config", "get", "web", "limits.memory"}, 2); out != "128MiB\n" {
		t.Fatalf("config get h2:web limits.memory: %q", out)
	}
	h1.fails(3, "not found", "config", "get", "h2:nothing", "limits.memory")
	h1.fails(2, `unknown config key "color"`, "config", "unset", "h2:web", "color")
	same([]string{"pool", "info", "default"}, 2)
	same([]string{"pool", "info", "default", "--format", "json"}, 2)
	h1.fails(3, "not found", "pool", "info", "h2:nopool")
}
