package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/store"
)

// monitorProc is `silo monitor --format json` running beside a test.
type monitorProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan api.Event
	stderr strings.Builder
}

func (e *env) monitor(args ...string) *monitorProc {
	e.t.Helper()
	argv := e.silo(append([]string{"monitor", "--format", "json"}, args...)...)
	m := &monitorProc{t: e.t, cmd: exec.Command(argv[0], argv[1:]...), events: make(chan api.Event, store.EventLogSize+10)}
	m.cmd.Env = append(append(os.Environ(), "SILO_STATE_DIR="+e.state), e.extra...)
	m.cmd.Stderr = &m.stderr
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go m.read(out)
	e.t.Cleanup(func() { _ = m.cmd.Process.Kill(); _ = m.cmd.Wait() })
	return m
}

func (m *monitorProc) read(out io.Reader) {
	defer close(m.events)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev api.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			m.t.Errorf("silo monitor printed %q: %v", sc.Text(), err)
			return
		}
		m.events <- ev
	}
}

// eventPatience bounds the wait for an event after the command that makes
// it has returned: the test asserts that events come, not how fast.
const eventPatience = time.Minute

// next returns the next lifecycle event as "action source [context]".
// want, when not empty, is the event expected, for the failure's message.
func (m *monitorProc) next(want string) string {
	m.t.Helper()
	select {
	case ev, ok := <-m.events:
		if !ok {
			m.t.Fatalf("silo monitor ended: %s", m.stderr.String())
		}
		var l api.EventLifecycle
		if err := json.Unmarshal(ev.Metadata, &l); err != nil || ev.Type != api.EventTypeLifecycle || ev.Timestamp.IsZero() {
			m.t.Fatalf("event %+v: %v", ev, err)
		}
		s := l.Action + " " + l.Source
		if len(l.Context) > 0 {
			s += fmt.Sprint(" ", l.Context)
		}
		return s
	case <-time.After(eventPatience):
		// Its goroutines, to say where it waits.
		_ = m.cmd.Process.Signal(syscall.SIGQUIT)
		_ = m.cmd.Wait()
		m.t.Fatalf("no event after %v (expected %q): %s", eventPatience, want, m.stderr.String())
	}
	return ""
}

// expect checks that the next events are want, in order.
func (m *monitorProc) expect(want ...string) {
	m.t.Helper()
	expectEvents(m.t, m.next, want)
}

// expectEvents checks that the next events, as next reads them, are
// want, in order.
func expectEvents(t *testing.T, next func(want string) string, want []string) {
	t.Helper()
	for _, w := range want {
		if got := next(w); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

// interrupt stops the monitor as ctrl-c does; it must exit cleanly.
func (m *monitorProc) interrupt() {
	m.t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGINT)
	if err := m.cmd.Wait(); err != nil {
		m.t.Fatalf("silo monitor after SIGINT: %v: %s", err, m.stderr.String())
	}
}

// silo monitor, run beside the commands, sees each command's change as
// it happens, in order, and an instance that stops on its own.
func TestMonitor(t *testing.T) {
	e := bootEnv(t, "btrfs")
	var img api.Image
	e.json(&img, "image", "info", "bb")
	m := e.monitor("--all") // from the log's start: nothing is missed while it starts
	inst := api.Path("instances", "web")
	m.expect("storage-pool-created /1.0/storage-pools/pbtrfs", "image-created "+api.Path("images", img.Fingerprint))

	e.launch("bb", "web")
	m.expect("network-created /1.0/networks/silobr0", "instance-created "+inst, "instance-started "+inst)
	e.ok("snapshot", "create", "web", "s1")
	m.expect("instance-snapshot-created " + inst + "/snapshots/s1")
	e.ok("restart", "web")
	m.expect("instance-shutdown "+inst, "instance-restarted "+inst)
	e.ok("stop", "--force", "web")
	m.expect("instance-stopped " + inst)
	e.ok("start", "web", "--wait")
	m.expect("instance-started " + inst)
	// On its own: its monitor finishes the run and logs it.
	e.run("exec", "web", "--", "poweroff")
	m.expect("instance-stopped " + inst)
	// A restart of a stopped instance is a start.
	e.ok("restart", "web", "--wait")
	m.expect("instance-started " + inst)
	e.ok("stop", "web")
	m.expect("instance-shutdown " + inst)
	e.ok("snapshot", "restore", "web", "s1")
	m.expect("instance-restored " + inst + " map[snapshot:s1]")
	e.ok("config", "set", "web", "limits.memory=64MiB")
	m.expect("instance-updated " + inst)
	e.ok("rename", "web", "www")
	www := api.Path("instances", "www")
	m.expect("instance-renamed " + www + " map[old_name:web]")
	e.ok("snapshot", "delete", "www", "s1")
	m.expect("instance-snapshot-deleted " + www + "/snapshots/s1")
	e.ok("delete", "www")
	m.expect("instance-deleted " + www)
	e.ok("volume", "create", "pbtrfs", "data")
	e.ok("volume", "snapshot", "create", "pbtrfs", "data", "v1")
	e.ok("volume", "delete", "pbtrfs", "data")
	vol := api.Path("storage-pools", "pbtrfs") + "/volumes/custom/data"
	m.expect("storage-volume-created "+vol, "storage-volume-snapshot-created "+vol+"/snapshots/v1", "storage-volume-deleted "+vol)
	e.ok("profile", "create", "p")
	e.ok("profile", "delete", "p")
	m.expect("profile-created /1.0/profiles/p", "profile-deleted /1.0/profiles/p")
	// A command that fails changes nothing, and logs nothing.
	e.fails(3, "not found", "start", "nosuch")
	e.ok("profile", "create", "q")
	m.expect("profile-created /1.0/profiles/q")
	m.interrupt()
}

// The log keeps its last events only; a reader that asks for what went is
// told how many it missed.
func TestMonitorMissed(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("profile", "create", "p")
	st := openStore(t, e)
	const extra = 100
	if err := st.Update(func(tx *store.Tx) error {
		for i := range store.EventLogSize + extra {
			if err := events.Record(tx, api.ActionProfileUpdated, api.Path("profiles", fmt.Sprint("p", i)), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m := e.monitor("--all")
	m.expect(fmt.Sprintf("profile-updated /1.0/profiles/p%d", extra)) // the oldest held
	for range store.EventLogSize - 1 {
		m.next("")
	}
	e.ok("profile", "delete", "p")
	m.expect("profile-deleted /1.0/profiles/p")
	m.interrupt()
	if want := fmt.Sprintf("missed %d events", extra+1); !strings.Contains(m.stderr.String(), want) {
		t.Fatalf("stderr %q, want %q", m.stderr.String(), want)
	}
}

// A change and its event are committed together: a command killed before
// its commit logs nothing, and one killed right after it has logged its
// event once.
func TestEventsCrash(t *testing.T) {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "web")
	logged := func() []string {
		t.Helper()
		var got []string
		if err := openStore(t, e).View(func(tx *store.Tx) error {
			_, err := tx.EventsAfter(0, func(_ uint64, data []byte) error {
				var ev api.Event
				var l api.EventLifecycle
				if err := json.Unmarshal(data, &ev); err != nil {
					return err
				}
				if err := json.Unmarshal(ev.Metadata, &l); err != nil {
					return err
				}
				if strings.HasPrefix(l.Action, "instance-snapshot") {
					got = append(got, l.Action+" "+l.Source)
				}
				return nil
			})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	crash := func(step string, args ...string) {
		t.Helper()
		e.extra = []string{"SILO_CRASH_AT=" + step}
		defer func() { e.extra = nil }()
		if r := e.run(args...); r.signal != syscall.SIGKILL {
			t.Fatalf("silo %v at %s: %+v, want killed", args, step, r)
		}
	}
	crash("snapshot/snapshotted", "snapshot", "create", "web", "s1")
	e.ok("list") // rolls the snapshot back
	if got := logged(); len(got) != 0 {
		t.Fatalf("after a crash before the commit: %q", got)
	}
	crash("snapshot/committed", "snapshot", "create", "web", "s1")
	e.ok("list")
	want := "instance-snapshot-created " + api.Path("instances", "web") + "/snapshots/s1"
	if got := logged(); len(got) != 1 || got[0] != want {
		t.Fatalf("after a crash after the commit: %q, want %q", got, want)
	}
	crash("snapshot-delete/committed", "snapshot", "delete", "web", "s1")
	e.ok("list")
	if got := logged(); len(got) != 2 || got[1] != "instance-snapshot-deleted "+api.Path("instances", "web")+"/snapshots/s1" {
		t.Fatalf("after a crash after the delete's commit: %q", got)
	}
}
