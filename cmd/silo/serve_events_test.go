package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/errkind"
)

// eventStream is /1.0/events as a test reads it: each event as a line
// ("lifecycle ACTION SOURCE", "operation STATUS DESCRIPTION", "logging
// LEVEL MESSAGE"), with the types it asked for.
type eventStream struct {
	t     *testing.T
	s     *client.EventStream
	types []string
	stop  context.CancelFunc
}

func openEvents(t *testing.T, c *client.Client, types ...string) *eventStream {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	s, err := c.Events(ctx, types)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &eventStream{t: t, s: s, types: types, stop: stop}
}

// next is the next event, as a line.
func (st *eventStream) next(want string) string {
	st.t.Helper()
	select {
	case ev, ok := <-st.s.C:
		if !ok {
			st.t.Fatalf("the stream ended (expected %q): %v", want, st.s.Err())
		}
		if len(st.types) > 0 && !slices.Contains(st.types, ev.Type) {
			st.t.Fatalf("a %s event on a stream of %v: %s", ev.Type, st.types, ev.Metadata)
		}
		if ev.Timestamp.IsZero() || ev.Location != api.LocationNone {
			st.t.Fatalf("event %+v", ev)
		}
		return eventLine(st.t, ev)
	case <-time.After(eventPatience):
		st.t.Fatalf("no event after %v (expected %q)", eventPatience, want)
	}
	return ""
}

// expect checks that the next events are want, in order.
func (st *eventStream) expect(want ...string) {
	st.t.Helper()
	expectEvents(st.t, st.next, want)
}

func eventLine(t *testing.T, ev api.Event) string {
	t.Helper()
	var err error
	line := ev.Type
	switch ev.Type {
	case api.EventTypeLifecycle:
		var l api.EventLifecycle
		err = json.Unmarshal(ev.Metadata, &l)
		line += " " + l.Action + " " + l.Source
	case api.EventTypeOperation:
		var op api.Operation
		err = json.Unmarshal(ev.Metadata, &op)
		line += " " + op.Status + " " + op.Description
	case api.EventTypeLogging:
		var l api.EventLogging
		err = json.Unmarshal(ev.Metadata, &l)
		line += " " + l.Level + " " + l.Message
	}
	if err != nil || ev.Type != api.EventTypeLogging && ev.Project != api.ProjectDefault {
		t.Fatalf("event %+v: %v", ev, err)
	}
	return line
}

// inotifyWatches counts the inotify instances process pid holds: the
// server's one watch of the database, shared by the streams that follow
// the event log, while there are any.
func inotifyWatches(t *testing.T, pid int) int {
	t.Helper()
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, _ := os.Readlink(fd); target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// waitWatches waits until process pid holds want inotify watches.
func waitWatches(t *testing.T, pid, want int) {
	t.Helper()
	for deadline := time.Now().Add(eventPatience); inotifyWatches(t, pid) != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("silo serve holds %d inotify watches, want %d", inotifyWatches(t, pid), want)
		}
	}
}

// /1.0/events streams what happens as it happens, in order: the CLI's
// commands typed beside the server and the API's operations; each
// stream gets the types it asked for. A client that goes leaves nothing
// behind, and SIGTERM closes the streams still open, at once.
func TestServeEvents(t *testing.T) {
	e := bootEnv(t, "dir")
	s := e.serve()
	c, ctx := s.c, context.Background()
	pid := s.cmd.Process.Pid

	_, err := c.Events(ctx, []string{"lifecycle", "bogus"})
	failsWith(t, err, http.StatusBadRequest, `unknown event type "bogus"`)
	resp, err := client.UnixHTTP(s.socket).Get("http://silo/1.0/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /1.0/events with no upgrade: %d", resp.StatusCode)
	}

	all := openEvents(t, c)
	life := openEvents(t, c, api.EventTypeLifecycle)
	ops := openEvents(t, c, api.EventTypeOperation)
	// Both other streams follow the log through one watch.
	if n := inotifyWatches(t, pid); n != 1 {
		t.Fatalf("%d inotify watches for two streams", n)
	}
	inst := api.Path("instances", "web")
	var lifecycle []string
	cli := func(want []string, args ...string) {
		t.Helper()
		e.ok(args...)
		for i := range want {
			want[i] = "lifecycle " + want[i]
		}
		life.expect(want...) // before the next command: as it happens
		lifecycle = append(lifecycle, want...)
	}
	cli([]string{"storage-pool-created /1.0/storage-pools/default", "network-created /1.0/networks/silobr0", "instance-created " + inst}, append([]string{"create", "bb", "web"}, e.poolArgs()...)...)
	cli([]string{"instance-started " + inst}, "start", "web")
	cli([]string{"instance-snapshot-created " + inst + "/snapshots/s1"}, "snapshot", "create", "web", "s1")
	cli([]string{"instance-updated " + inst}, "config", "set", "web", "user.a=1")

	// An operation of the API: its states, and the change it made.
	op, err := c.CreateSnapshot(ctx, "web", api.InstanceSnapshotsPost{Name: "s2"})
	if err != nil {
		t.Fatal(err)
	}
	ops.expect("operation Pending Snapshotting instance web", "operation Running Snapshotting instance web",
		"operation Success Snapshotting instance web")
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	life.expect("lifecycle instance-snapshot-created " + inst + "/snapshots/s2")
	lifecycle = append(lifecycle, "lifecycle instance-snapshot-created "+inst+"/snapshots/s2")
	// One that fails, which the server logs.
	op, err = c.DeleteSnapshot(ctx, "web", "nope")
	if err == nil {
		err = op.Wait(ctx)
	}
	if !strings.Contains(fmt.Sprint(err), `"nope"`) {
		t.Fatalf("deleting a snapshot that does not exist: %v", err)
	}
	ops.expect("operation Pending Deleting snapshot web/nope", "operation Running Deleting snapshot web/nope",
		"operation Failure Deleting snapshot web/nope")
	cli([]string{"instance-stopped " + inst}, "stop", "--force", "web")
	cli([]string{"instance-deleted " + inst}, "delete", "web")

	// The stream of every type: each type's events in their order, and
	// the failure's log record.
	var got []string
	ofType := func(typ string) []string {
		return slices.DeleteFunc(slices.Clone(got), func(l string) bool { return !strings.HasPrefix(l, typ+" ") })
	}
	const failed = "logging warning operation failed"
	for len(ofType(api.EventTypeLifecycle)) < len(lifecycle) || len(ofType(api.EventTypeOperation)) < 6 || !slices.Contains(got, failed) {
		got = append(got, all.next(""))
	}
	if l := ofType(api.EventTypeLifecycle); !slices.Equal(l, lifecycle) {
		t.Fatalf("lifecycle events of the stream of every type:\n%s\nwant\n%s", strings.Join(l, "\n"), strings.Join(lifecycle, "\n"))
	}
	if o := ofType(api.EventTypeOperation); len(o) != 6 || o[2] != "operation Success Snapshotting instance web" ||
		o[5] != "operation Failure Deleting snapshot web/nope" {
		t.Fatalf("operation events of the stream of every type: %q", o)
	}

	// Clients that go: their subscriptions end, and the watch with the
	// last of them; the server serves on.
	for range 20 {
		openEvents(t, c, api.EventTypeLifecycle).stop()
	}
	all.stop()
	life.stop()
	waitWatches(t, pid, 0)
	if _, err := c.Server(ctx); err != nil {
		t.Fatalf("after the clients went: %v", err)
	}

	// SIGTERM with a stream open: it is closed, going away, and the
	// server ends without waiting out its grace of a minute.
	start := time.Now()
	s.stop(t)
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("silo serve took %v to end with a stream open", took)
	}
	select {
	case _, ok := <-ops.s.C:
		if ok {
			t.Fatal("an event after the server ended")
		}
	case <-time.After(eventPatience):
		t.Fatal("the stream is still open after the server ended")
	}
	if err := ops.s.Err(); !errors.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "the server is shutting down") {
		t.Fatalf("the stream at the server's end: %v", err)
	}
}

// silo monitor h2: reads h2's events through its API, over TLS: what
// h2's own CLI does and what h1 does there through the remote, as it
// happens; h2's server going ends it with an error.
func TestRemoteMonitor(t *testing.T) {
	h1, h2 := newEnv(t, "dir"), bootEnv(t, "dir")
	s2 := servedPair(t, h1, h2)
	h2.ok("create", "bb", "web")
	h1.fails(2, "--all is not served by remotes", "monitor", "h2:", "--all")
	h1.fails(2, "usage: silo monitor [REMOTE:]", "monitor", "h2:web")
	h1.fails(2, `unknown event type "bogus"`, "monitor", "h2:", "--type", "bogus")

	m := h1.monitor("h2:", "--type", "lifecycle") // not the operations of the API
	waitWatches(t, s2.cmd.Process.Pid, 1)         // it follows h2's log
	inst := api.Path("instances", "web")
	h2.ok("snapshot", "create", "web", "s1")
	m.expect("instance-snapshot-created " + inst + "/snapshots/s1")
	h1.ok("config", "set", "h2:web", "user.a=1")
	m.expect("instance-updated " + inst)

	s2.stop(t)
	err := m.cmd.Wait()
	if err == nil || !strings.Contains(m.stderr.String(), "the server is shutting down") {
		t.Fatalf("silo monitor h2: when h2's server ends: %v: %s", err, m.stderr.String())
	}
}
