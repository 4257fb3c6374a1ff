package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

// housekeep runs the background pass with the clock at now, and returns
// its report.
func (e *env) housekeep(now string) engine.HousekeepReport {
	e.t.Helper()
	var r engine.HousekeepReport
	e.json(&r, "housekeep", "--now", now)
	return r
}

func (e *env) snapshots(name string) []api.InstanceSnapshot {
	e.t.Helper()
	var snaps []api.InstanceSnapshot
	e.apiJSON(&snaps, "snapshot", "list", name)
	return snaps
}

// Scheduled snapshots, with the clock the test sets: taken once at the
// time named, under the pattern's names, caught up once after a missed
// pass; stopped instances skipped unless snapshots.schedule.stopped.
func TestSnapshotSchedule(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "web")
	e.ok("config", "set", "web", "snapshots.schedule=0 6 * * *", "snapshots.pattern=daily-{{ creation_date|date:'2006-01-02_15-04' }}")
	// A profile's schedule, for two stopped instances: one of them may
	// be snapshotted stopped.
	e.ok("profile", "create", "hourly")
	e.ok("profile", "set", "hourly", "snapshots.schedule=@hourly")
	e.ok("create", "bb", "idle", "--profile", "default", "--profile", "hourly")
	e.ok("create", "bb", "cold", "--profile", "default", "--profile", "hourly", "-c", "snapshots.schedule.stopped=true")
	e.ok("create", "bb", "none")

	steps := []struct {
		now     string
		taken   []string
		skipped []string
	}{
		{"2026-03-01T05:59:30Z", nil, nil},
		{"2026-03-01T06:00:10Z", []string{"cold/snap0", "web/daily-2026-03-01_06-00"}, []string{"idle"}},
		{"2026-03-01T06:00:50Z", nil, nil}, // the same minute: nothing twice
		{"2026-03-01T06:30:00Z", nil, nil},
		{"2026-03-01T07:00:00Z", []string{"cold/snap1"}, []string{"idle"}},
		{"2026-03-02T06:00:05Z", []string{"cold/snap2", "web/daily-2026-03-02_06-00"}, []string{"idle"}},
		// Passes missed for days: one snapshot each, not one per time.
		{"2026-03-05T09:00:00Z", []string{"cold/snap3", "web/daily-2026-03-05_09-00"}, []string{"idle"}},
		{"2026-03-05T09:00:00Z", nil, nil},
	}
	for _, s := range steps {
		r := e.housekeep(s.now)
		if !slices.Equal(r.Taken, append([]string{}, s.taken...)) || !slices.Equal(r.Skipped, append([]string{}, s.skipped...)) || len(r.Expired)+len(r.Failed) > 0 {
			t.Fatalf("housekeep at %s: %+v; want taken %v, skipped %v", s.now, r, s.taken, s.skipped)
		}
	}
	if got := snapshotNames(t, e, "web"); !slices.Equal(got, []string{"daily-2026-03-01_06-00", "daily-2026-03-02_06-00", "daily-2026-03-05_09-00"}) {
		t.Fatalf("web's snapshots: %v", got)
	}
	for name, want := range map[string]int{"cold": 4, "idle": 0, "none": 0} {
		if got := len(e.snapshots(name)); got != want {
			t.Fatalf("%s has %d snapshots, want %d", name, got, want)
		}
	}
	if st := e.status("web"); st.State != "running" {
		t.Fatalf("web after its snapshots: %+v", st)
	}
	// The table is for people; an empty pass says nothing.
	if out := e.ok("housekeep", "--now", "2026-03-06T06:00:00Z"); out != "Snapshot cold/snap4 taken\nSnapshot web/daily-2026-03-06_06-00 taken\nInstance idle is stopped: its scheduled snapshot skipped\n" {
		t.Fatalf("housekeep says %q", out)
	}
	if out := e.ok("housekeep", "--now", "2026-03-06T06:00:30Z"); out != "" {
		t.Fatalf("an idle pass says %q", out)
	}
	e.fails(2, "--now", "housekeep", "--now", "tomorrow")

	// A pass killed in the middle of a snapshot leaves nothing behind,
	// and the next pass, in the same minute, takes it, once.
	e.extra = []string{"SILO_CRASH_AT=snapshot/snapshotted"}
	if r := e.run("housekeep", "--now", "2026-03-07T06:00:00Z"); r.signal != syscall.SIGKILL {
		t.Fatalf("housekeep with a crash: exit %d, %s", r.code, r.err)
	}
	e.extra = nil
	// The counter moved in the crashed pass: snap5 is not reused.
	if r := e.housekeep("2026-03-07T06:00:20Z"); !slices.Equal(r.Taken, []string{"cold/snap6", "web/daily-2026-03-07_06-00"}) {
		t.Fatalf("the pass after a crash: %+v", r)
	}
	if r := e.housekeep("2026-03-07T06:00:40Z"); len(r.Taken) > 0 {
		t.Fatalf("a third pass: %+v", r)
	}
	e.consistent()
}

// Snapshots expire: by snapshots.expiry, by --expiry, never with
// --no-expiry; the pass deletes them once their time has come.
func TestSnapshotExpiry(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "x", "-c", "snapshots.expiry=1d")
	before := time.Now()
	e.ok("snapshot", "create", "x")
	e.ok("snapshot", "create", "x", "short", "--expiry", "2H")
	e.ok("snapshot", "create", "x", "kept", "--no-expiry")
	after := time.Now()
	e.fails(2, "not both", "snapshot", "create", "x", "y", "--expiry", "1d", "--no-expiry")
	e.fails(2, "snapshot expiry", "snapshot", "create", "x", "y", "--expiry", "2 days")

	var inst api.Instance
	e.apiJSON(&inst, "info", "x")
	exp := map[string]time.Time{}
	for _, s := range inst.Snapshots {
		exp[s.Name] = s.ExpiresAt
	}
	within := func(got time.Time, d time.Duration) bool {
		return !got.Before(before.Add(d).Truncate(time.Second)) && !got.After(after.Add(d))
	}
	if !within(exp["snap0"], 24*time.Hour) || !within(exp["short"], 2*time.Hour) || !exp["kept"].IsZero() {
		t.Fatalf("expiries %v, taken between %v and %v", exp, before, after)
	}
	if out := e.ok("info", "x"); !strings.Contains(out, "snap0 (expires ") || !strings.Contains(out, ", kept\n") {
		t.Fatalf("info shows no expiry:\n%s", out)
	}

	// Copies and backups keep the expiries.
	file := filepath.Join(t.TempDir(), "x.tar.zst")
	e.ok("copy", "x", "copied")
	e.ok("export", "x", "-o", file)
	e.ok("import", file, "imported")
	for _, name := range []string{"copied", "imported"} {
		for _, s := range e.snapshots(name) {
			if !s.ExpiresAt.Equal(exp[s.Name]) {
				t.Fatalf("%s/%s expires %v, x's %v", name, s.Name, s.ExpiresAt, exp[s.Name])
			}
		}
		e.ok("delete", name)
	}

	at := func(d time.Duration) string { return after.Add(d).UTC().Format(time.RFC3339) }
	if r := e.housekeep(at(time.Hour)); len(r.Expired) != 0 {
		t.Fatalf("expired too soon: %+v", r)
	}
	if r := e.housekeep(at(3 * time.Hour)); !slices.Equal(r.Expired, []string{"x/short"}) {
		t.Fatalf("after 3 hours: %+v", r)
	}
	if r := e.housekeep(at(25 * time.Hour)); !slices.Equal(r.Expired, []string{"x/snap0"}) {
		t.Fatalf("after 25 hours: %+v", r)
	}
	if got := snapshotNames(t, e, "x"); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("left: %v", got)
	}
	// A scheduled snapshot gets its expiry from the pass's clock.
	e.ok("config", "set", "x", "snapshots.schedule=@daily", "snapshots.schedule.stopped=true", "snapshots.expiry=2d")
	if r := e.housekeep("2030-01-01T00:00:00Z"); !slices.Equal(r.Taken, []string{"x/snap1"}) {
		t.Fatalf("scheduled: %+v", r)
	}
	if s := e.snapshots("x")[1]; !s.ExpiresAt.Equal(time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("scheduled snapshot %+v", s)
	}
	if r := e.housekeep("2030-01-03T00:00:00Z"); !slices.Equal(r.Expired, []string{"x/snap1"}) || !slices.Equal(r.Taken, []string{"x/snap2"}) {
		t.Fatalf("two days later: %+v", r)
	}
	e.consistent()
}

// Custom volumes have schedules, expiries and patterns of their own.
func TestVolumeSchedule(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) { volumeSchedule(t, driver) })
	}
}

func volumeSchedule(t *testing.T, driver string) {
	e := newEnv(t, driver)
	pool := e.volumePool()
	e.ok("volume", "create", pool, "data")
	e.ok("volume", "set", pool, "data", "snapshots.schedule=*/15 * * * *", "snapshots.expiry=30M", "snapshots.pattern=q%d")
	writeVolumeFile(t, e, pool, "data", "f", "one")
	for _, s := range []struct {
		now            string
		taken, expired []string
	}{
		{"2026-03-01T10:00:00Z", []string{pool + "/data/q0"}, nil},
		{"2026-03-01T10:05:00Z", nil, nil},
		{"2026-03-01T10:15:00Z", []string{pool + "/data/q1"}, nil},
		{"2026-03-01T10:30:00Z", []string{pool + "/data/q2"}, []string{pool + "/data/q0"}},
		{"2026-03-01T10:30:30Z", nil, nil},
	} {
		r := e.housekeep(s.now)
		if !slices.Equal(r.Taken, append([]string{}, s.taken...)) || !slices.Equal(r.Expired, append([]string{}, s.expired...)) {
			t.Fatalf("housekeep at %s: %+v; want taken %v, expired %v", s.now, r, s.taken, s.expired)
		}
	}
	v := e.volume(pool, "data")
	if got := volumeSnapshotNames(v); !slices.Equal(got, []string{"q1", "q2"}) {
		t.Fatalf("volume snapshots %v", got)
	}
	if !v.Snapshots[1].ExpiresAt.Equal(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("q2 expires %v", v.Snapshots[1].ExpiresAt)
	}
	e.ok("volume", "snapshot", "create", pool, "data", "--no-expiry")
	e.ok("volume", "snapshot", "create", pool, "data", "hand", "--expiry", "1H")
	snaps := e.volume(pool, "data").Snapshots
	if snaps[2].Name != "q3" || !snaps[2].ExpiresAt.IsZero() || snaps[3].Name != "hand" || snaps[3].ExpiresAt.IsZero() {
		t.Fatalf("snapshots by hand: %+v", snaps)
	}
	e.ok("volume", "snapshot", "restore", pool, "data", "q1")
	if got := volumeFile(t, e, pool, "data", "f"); got != "one" {
		t.Fatalf("restored from a scheduled snapshot: %q", got)
	}
	// Two passes at once (a server's and cron's) do the work once.
	var wg sync.WaitGroup
	reports := make([]engine.HousekeepReport, 2)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.run("housekeep", "--now", "2026-03-01T10:45:00Z", "--format", "json")
			if r.code != 0 || json.Unmarshal([]byte(r.out), &reports[i]) != nil {
				t.Errorf("housekeep: exit %d: %s %s", r.code, r.out, r.err)
			}
		}()
	}
	wg.Wait()
	if len(reports[0].Taken)+len(reports[1].Taken) != 1 || len(reports[0].Expired)+len(reports[1].Expired) != 1 {
		t.Fatalf("two passes at once: %+v; want one snapshot taken and q1 deleted, once", reports)
	}
	e.consistent()
}

// Bad keys of schedules and autostart are refused when they are set, in
// one line, and change nothing.
func TestBackgroundKeysRefused(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "x")
	e.ok("volume", "create", "default", "v")
	e.ok("profile", "create", "p")
	for _, kv := range []struct{ kv, want string }{
		{"snapshots.schedule=0 6 * *", "snapshots.schedule"},
		{"snapshots.schedule=@every 1h", "snapshots.schedule"},
		{"snapshots.schedule=0 6 * * *,", "snapshots.schedule"},
		{"snapshots.expiry=2", "snapshots.expiry"},
		{"snapshots.expiry=1 week", "snapshots.expiry"},
		{"snapshots.pattern=snap%s", "snapshots.pattern"},
		{"snapshots.pattern={{ name }}", "snapshots.pattern"},
		{"snapshots.pattern=a/%d", "snapshots.pattern"},
	} {
		e.fails(2, kv.want, "config", "set", "x", kv.kv)
		e.fails(2, kv.want, "profile", "set", "p", kv.kv)
		e.fails(2, kv.want, "volume", "set", "default", "v", kv.kv)
		if !strings.Contains(kv.kv, ",") { // -c splits values at commas
			e.fails(2, kv.want, "create", "bb", "y", "-c", kv.kv)
		}
	}
	for _, kv := range []string{"snapshots.schedule.stopped=yes", "boot.autostart=1", "boot.autostart.priority=high", "boot.autostart.delay=-1", "boot.autostart.delay=2s"} {
		e.fails(2, strings.Split(kv, "=")[0], "config", "set", "x", kv)
		e.fails(2, strings.Split(kv, "=")[0], "profile", "set", "p", kv)
	}
	e.fails(2, "unknown volume config key", "volume", "set", "default", "v", "boot.autostart=true")
	var inst api.Instance
	e.apiJSON(&inst, "info", "x")
	for k := range inst.Config {
		if strings.HasPrefix(k, "snapshots.") || strings.HasPrefix(k, "boot.") {
			t.Fatalf("a refused key was set: %s", k)
		}
	}
	if e.status("y").State != "absent" {
		t.Fatalf("refused keys changed something: %+v", inst.Config)
	}
	// Good ones are taken.
	e.ok("config", "set", "x", "snapshots.schedule=@weekly, 30 2 * * 1-5", "snapshots.expiry=1w 2d", "snapshots.pattern={{ creation_date|date:'20060102' }}-%d",
		"boot.autostart=true", "boot.autostart.priority=-3", "boot.autostart.delay=0")
}

// Autostart starts boot.autostart=true instances by priority, and those
// with it unset whose last run ended unseen, as when the host went down;
// a second pass starts nothing.
func TestAutostart(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "a", "-c", "boot.autostart=true", "-c", "boot.autostart.priority=1")
	e.ok("create", "bb", "b", "-c", "boot.autostart=true", "-c", "boot.autostart.priority=10", "-c", "boot.autostart.delay=1")
	e.ok("create", "bb", "c", "-c", "boot.autostart=true") // priority 0: after a
	e.ok("create", "bb", "never", "-c", "boot.autostart=false")
	e.ok("create", "bb", "unset")
	e.launch("bb", "crashed")

	// crashed goes down unstopped: its monitor and its init killed, as
	// when the host goes down; the next command finds it dead.
	init := e.status("crashed").Pid
	syscall.Kill(monitorOf(t, init), syscall.SIGKILL)
	syscall.Kill(init, syscall.SIGKILL)
	eventually(t, "the killed instance shows stopped", func() bool { return e.status("crashed").State == "stopped" })

	var r engine.AutostartReport
	e.json(&r, "autostart")
	if !slices.Equal(r.Started, []string{"b", "a", "c", "crashed"}) || len(r.Failed) > 0 {
		t.Fatalf("autostart: %+v", r)
	}
	if gap := e.status("a").Started.Sub(e.status("b").Started); gap < time.Second {
		t.Fatalf("a started %v after b, within b's delay of 1 s", gap)
	}
	for name, want := range map[string]string{"a": "running", "b": "running", "c": "running", "crashed": "running", "never": "stopped", "unset": "stopped"} {
		if st := e.status(name); st.State != want {
			t.Fatalf("%s after autostart: %+v, want %s", name, st, want)
		}
	}
	if out := e.ok("autostart"); out != "" {
		t.Fatalf("a second pass: %q", out)
	}
	// Stopped by hand, crashed is not started again: only a run that
	// ended unseen counts.
	e.ok("stop", "crashed", "--force")
	e.ok("stop", "c", "--force")
	if out := e.ok("autostart"); out != "Instance c started\n" {
		t.Fatalf("after stops: %q", out)
	}
	e.consistent()
}

// silo serve autostarts at its start, and runs the background pass at its
// start and then each minute; it ends at once on SIGTERM all the same.
func TestServeBackground(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "auto", "-c", "boot.autostart=true")
	e.ok("create", "bb", "manual")
	e.ok("volume", "create", "default", "v")
	e.ok("volume", "set", "default", "v", "snapshots.schedule=* * * * *", "snapshots.expiry=1H")
	s := e.serve()
	eventually(t, "the server autostarts auto", func() bool { return e.status("auto").State == "running" })
	eventually(t, "the server snapshots v", func() bool { return len(e.volume("default", "v").Snapshots) > 0 })
	s.stop(t)
	if st := e.status("manual"); st.State != "stopped" {
		t.Fatalf("manual: %+v", st)
	}
}
