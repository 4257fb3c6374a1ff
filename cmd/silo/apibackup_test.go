package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/internal/testutil"
)

// tinyWeb gives e the image tiny and an instance web of it, stopped,
// with snapshot s1 holding /etc/v "one" and its head /etc/v "two".
func tinyWeb(t *testing.T, e *env) {
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok(append([]string{"create", "tiny", "web"}, e.poolArgs()...)...)
	setV(t, e, "web", "one\n")
	e.ok("snapshot", "create", "web", "s1")
	setV(t, e, "web", "two\n")
}

func setV(t *testing.T, e *env, name, text string) {
	withTree(t, e, name, "", func(root string) {
		if err := os.WriteFile(filepath.Join(root, "etc/v"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// checkWeb checks that instance name on e holds what tinyWeb made, with
// the snapshots snaps (s1 first, when there).
func checkWeb(t *testing.T, e *env, name string, snaps ...string) {
	t.Helper()
	readV := func(snap string) string {
		var got []byte
		withTree(t, e, name, snap, func(root string) { got, _ = os.ReadFile(filepath.Join(root, "etc/v")) })
		return string(got)
	}
	if got := snapshotNames(t, e, name); !slices.Equal(got, snaps) {
		t.Fatalf("%s's snapshots: %v, want %v", name, got, snaps)
	}
	if got := readV(""); got != "two\n" {
		t.Fatalf("%s's /etc/v: %q", name, got)
	}
	if len(snaps) > 0 && readV("s1") != "one\n" {
		t.Fatalf("%s/s1's /etc/v: %q", name, readV("s1"))
	}
}

// backupNames lists the names of an instance's backups through the API.
func backupNames(t *testing.T, s *apiServer, name string) []string {
	t.Helper()
	list, err := s.c.Backups(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range list {
		out = append(out, b.Name)
	}
	return out
}

// backupFiles counts the files of the state directory's backups.
func backupFiles(t *testing.T, e *env) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.state, "backups"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries)
}

// The backups API, as LXD's: made in an operation, named backup0... when
// not named, listed, downloaded and imported, renamed, deleted; they go
// with their instance's rename and deletion, and expire in the
// background pass. Bad requests are answered at once and make nothing.
func TestServeBackups(t *testing.T) {
	e := newEnv(t, "dir")
	tinyWeb(t, e)
	s := e.serve()
	c, ctx := s.c, context.Background()
	st, err := c.Events(ctx, []string{api.EventTypeLifecycle})
	if err != nil {
		t.Fatal(err)
	}

	op, err := c.CreateBackup(ctx, "web", api.InstanceBackupsPost{})
	if err != nil {
		t.Fatal(err)
	}
	if got := op.Resources["backups"]; !slices.Equal(got, []string{"/1.0/instances/web/backups/backup0"}) {
		t.Fatalf("the operation's backups: %v", got)
	}
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	must(t)(c.CreateBackup(ctx, "web", api.InstanceBackupsPost{Name: "b1", InstanceOnly: true, CompressionAlgorithm: "gzip"}))

	_, err = c.CreateBackup(ctx, "web", api.InstanceBackupsPost{Name: "b1"})
	failsWith(t, err, 409, `backup "b1" of instance "web" already exists`)
	_, err = c.CreateBackup(ctx, "web", api.InstanceBackupsPost{CompressionAlgorithm: "lz4"})
	failsWith(t, err, 400, "lz4")
	_, err = c.CreateBackup(ctx, "web", api.InstanceBackupsPost{Name: "../x"})
	failsWith(t, err, 400, "invalid backup name")
	_, err = c.CreateBackup(ctx, "nope", api.InstanceBackupsPost{})
	failsWith(t, err, 404, `instance "nope" not found`)
	_, err = c.Backup(ctx, "web", "nope")
	failsWith(t, err, 404, `backup "nope" of instance "web" not found`)
	_, err = c.DeleteBackup(ctx, "web", "nope")
	failsWith(t, err, 404, `backup "nope" of instance "web" not found`)
	_, err = c.ExportBackup(ctx, "web", "nope")
	failsWith(t, err, 404, `backup "nope" of instance "web" not found`)

	list, err := c.Backups(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "backup0" || list[0].InstanceOnly || list[0].CompressionAlgorithm != "zstd" ||
		list[1].Name != "b1" || !list[1].InstanceOnly || list[1].CompressionAlgorithm != "gzip" ||
		list[0].Size == 0 || !list[0].ExpiresAt.IsZero() || list[0].CreatedAt.IsZero() {
		t.Fatalf("backups: %+v", list)
	}
	if backupFiles(t, e) != 2 {
		t.Fatalf("%d backup files for 2 backups", backupFiles(t, e))
	}
	sameJSON(t, "backup list web", list, e.cliJSON(list, "backup", "list", "web"))
	if out := e.ok("backup", "list", "web"); !strings.Contains(out, "b1") || !strings.Contains(out, "gzip") {
		t.Fatalf("backup list says:\n%s", out)
	}
	e.fails(3, `instance "nope" not found`, "backup", "list", "nope")

	// Downloaded, each is what it says, and imports.
	dir := t.TempDir()
	download := func(name, b string) string {
		t.Helper()
		rc, err := c.ExportBackup(ctx, name, b)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+"-"+b)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.ok("import", download("web", "backup0"), "from0")
	checkWeb(t, e, "from0", "s1")
	f1 := download("web", "b1")
	if data, _ := os.ReadFile(f1); !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatal("the gzip backup is not gzip")
	}
	e.ok("import", f1, "from1")
	checkWeb(t, e, "from1")

	must(t)(c.RenameBackup(ctx, "web", "b1", "b2"))
	if op, err = c.RenameBackup(ctx, "web", "b2", "backup0"); err == nil {
		err = op.Wait(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), `backup "backup0" of instance "web" already exists`) {
		t.Fatalf("a rename onto a backup's name: %v", err)
	}

	// The instance's rename carries its backups.
	e.ok("rename", "web", "www")
	if got := backupNames(t, s, "www"); !slices.Equal(got, []string{"backup0", "b2"}) {
		t.Fatalf("www's backups: %v", got)
	}
	e.ok("import", download("www", "backup0"), "again")
	checkWeb(t, e, "again", "s1")

	// Expiry, by the background pass's clock.
	expires := time.Now().Add(time.Hour).UTC()
	must(t)(c.CreateBackup(ctx, "www", api.InstanceBackupsPost{Name: "daily", ExpiresAt: expires}))
	if b, err := c.Backup(ctx, "www", "daily"); err != nil || !b.ExpiresAt.Equal(expires) {
		t.Fatalf("daily: %+v, %v", b, err)
	}
	at := func(d time.Duration) string { return expires.Add(d).Format(time.RFC3339) }
	if r := e.housekeep(at(-time.Minute)); len(r.ExpiredBackups) != 0 {
		t.Fatalf("expired too soon: %+v", r)
	}
	if r := e.housekeep(at(time.Minute)); !slices.Equal(r.ExpiredBackups, []string{"www/daily"}) {
		t.Fatalf("after its expiry: %+v", r)
	}
	if got := backupNames(t, s, "www"); !slices.Equal(got, []string{"backup0", "b2"}) {
		t.Fatalf("www's backups after the pass: %v", got)
	}

	must(t)(c.DeleteBackup(ctx, "www", "b2"))
	if got := backupNames(t, s, "www"); !slices.Equal(got, []string{"backup0"}) || backupFiles(t, e) != 1 {
		t.Fatalf("after a deletion: %v, %d files", got, backupFiles(t, e))
	}
	e.consistent()

	// Each change was a lifecycle event, as LXD's, the background pass's
	// too.
	want := []string{"created web/backups/backup0", "created web/backups/b1", "renamed web/backups/b2",
		"created www/backups/daily", "deleted www/backups/daily", "deleted www/backups/b2"}
	var got []string
	for len(got) < len(want) {
		select {
		case ev := <-st.C:
			if rest, ok := strings.CutPrefix(eventLine(t, ev), "lifecycle instance-backup-"); ok {
				got = append(got, strings.Replace(rest, " /1.0/instances/", " ", 1))
			}
		case <-time.After(eventPatience):
			t.Fatalf("backup events: %v, then none", got)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backup events: %v, want %v", got, want)
	}

	// The instance's deletion takes its backups with it.
	e.ok("delete", "www")
	if n := backupFiles(t, e); n != 0 {
		t.Fatalf("%d backup files outlive their instance", n)
	}
	e.consistent()
}

// A server killed while it writes a backup leaves no file, and no
// record, that the next start does not remove; killed after the commit,
// the backup is whole.
func TestServeBackupCrash(t *testing.T) {
	e := newEnv(t, "dir")
	tinyWeb(t, e)
	for _, c := range []struct {
		step string
		kept bool
	}{{"begun", false}, {"written", false}, {"committed", true}} {
		s := e.serve("SILO_CRASH_AT=backup/" + c.step)
		if _, err := s.c.CreateBackup(context.Background(), "web", api.InstanceBackupsPost{Name: c.step}); err != nil {
			t.Fatal(err)
		}
		<-s.done
		if ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the server was not killed at backup/%s: %v\n%s", c.step, s.cmd.ProcessState, s.out)
		}
		s = e.serve()
		if kept := slices.Contains(backupNames(t, s, "web"), c.step); kept != c.kept {
			t.Fatalf("killed at backup/%s: the backup is there: %v, want %v", c.step, kept, c.kept)
		}
		e.consistent()
		s.stop(t)
	}
	if n := backupFiles(t, e); n != 1 {
		t.Fatalf("%d backup files for the one committed", n)
	}
}

// silo export and import reach a remote: export h2:web downloads h2's
// backup stream, which imports here, and import uploads a backup file to
// h2. A file h2 cannot read is refused in one line and leaves nothing
// there.
func TestBackupsBetweenHosts(t *testing.T) {
	h1, h2 := newEnv(t, "dir"), newEnv(t, "dir")
	servedPair(t, h1, h2)
	tinyWeb(t, h2)
	// A backup h2 keeps, listed from h1, goes with its instance below.
	must(t)(client.NewUnix(filepath.Join(h2.state, "unix.socket")).CreateBackup(context.Background(), "web", api.InstanceBackupsPost{Name: "kept"}))
	if out := h1.ok("backup", "list", "h2:web"); !strings.Contains(out, "kept") {
		t.Fatalf("backup list h2:web says:\n%s", out)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "web.tar.zst")
	if out := h1.ok("export", "h2:web", "-o", file); !strings.Contains(out, "Instance h2:web exported to "+file) {
		t.Fatalf("export said: %q", out)
	}
	h1.ok("import", file)
	checkWeb(t, h1, "web", "s1")
	h1.fails(3, `instance "nope" not found`, "export", "h2:nope", "-o", filepath.Join(dir, "nope"))
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Fatalf("a failed export left its file: %v", err)
	}

	// And back, under another name, then under the backup's.
	h1.ok("snapshot", "create", "web", "s2")
	back := filepath.Join(dir, "back.tar.gz")
	h1.ok("export", "web", "-o", back, "--compression", "gzip")
	if out := h1.ok("import", back, "h2:back"); !strings.Contains(out, "Instance back imported on pool default, with 2 snapshot(s)") {
		t.Fatalf("import said: %q", out)
	}
	if got := snapshotNames(t, h2, "back"); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("back's snapshots on h2: %v", got)
	}
	h1.fails(4, `instance "web" already exists`, "import", back, "h2:")
	h2.ok("delete", "web")
	if n := backupFiles(t, h2); n != 0 {
		t.Fatalf("%d backup files outlive web on h2", n)
	}
	h1.ok("import", back, "h2:")
	checkWeb(t, h2, "web", "s1", "s2")

	good, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"truncated", "unexpected EOF", good[:len(good)/2]},
		{"an image, not a backup", "not a silo backup", rootfs(t)},
		{"a bad config key", "the backup's config", testutil.ReadTestdata(t, "backup", "bad-config.tar")},
		{"traversal", "leaves the root", testutil.ReadTestdata(t, "backup", "hostile", "traversal.tar")},
		// Refused at its first bytes, while the client still sends.
		{"large, and no backup", "invalid tar header", bytes.Repeat([]byte("not a backup\n"), 4<<20)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad")
			if err := os.WriteFile(p, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			h1.fails(2, c.want, "import", p, "h2:bad")
			if st := h2.status("bad"); st.State != "absent" {
				t.Fatalf("a refused import left bad on h2: %s", st.State)
			}
			h2.consistent()
		})
	}
	h1.consistent()
}
