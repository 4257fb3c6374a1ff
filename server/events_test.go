package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// nextEvent is the next event of st, or a failure after a minute.
func nextEvent(t *testing.T, st *client.EventStream) api.Event {
	t.Helper()
	select {
	case ev, ok := <-st.C:
		if !ok {
			t.Fatalf("the stream ended: %v", st.Err())
		}
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event after a minute")
	}
	return api.Event{}
}

// An operation's events arrive as it goes: pending, running, then how it
// ended; a type filter is honoured; a client that goes leaves nothing
// behind; the server's end closes the streams it serves.
func TestEventsStream(t *testing.T) {
	s := newServer(t, Config{})
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeUnix(ctx, l, time.Minute) }()
	c := client.NewUnix(sock)
	bg := context.Background()

	if _, err := c.Events(bg, []string{"bogus"}); !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), `unknown event type "bogus"`) {
		t.Fatalf("a bogus type: %v", err)
	}
	resp, err := client.UnixHTTP(sock).Get("http://silo/1.0/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /1.0/events with no upgrade: %d", resp.StatusCode)
	}

	// Open through the server's end.
	kept, err := c.Events(bg, []string{api.EventTypeLifecycle})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	opCtx, leave := context.WithCancel(bg)
	ops, err := c.Events(opCtx, []string{api.EventTypeOperation})
	if err != nil {
		t.Fatal(err)
	}
	s.async("fail", nil, func(context.Context, *engine.Engine) error { return errors.New("on purpose") }).Render(discard{})
	for _, want := range []api.StatusCode{api.Pending, api.Running, api.Failure} {
		ev := nextEvent(t, ops)
		var op api.Operation
		if err := json.Unmarshal(ev.Metadata, &op); err != nil || ev.Type != api.EventTypeOperation || op.StatusCode != want ||
			op.Description != "fail" || ev.Project != api.ProjectDefault {
			t.Fatalf("event %+v (%v), want the operation %s", ev, err, want)
		}
		if want == api.Failure && op.Err != "on purpose" {
			t.Fatalf("failed operation's event: %+v", op)
		}
	}
	leave()
	if _, ok := <-ops.C; ok || ops.Err() != nil {
		t.Fatalf("after the client left: %v", ops.Err())
	}
	// The server lets go of the client that left: its handler and its
	// subscription end.
	for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before: %s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, ok := <-kept.C; ok || !strings.Contains(fmt.Sprint(kept.Err()), "the server is shutting down") {
		t.Fatalf("a stream at the server's end: %v", kept.Err())
	}
}

// BenchmarkEventLatency is the time from a change to its event's arrival
// over /1.0/events on the unix socket: a lifecycle event committed to the
// store (as a command beside the server commits it, read back through the
// inotify watch), and an operation's events, published in the process.
func BenchmarkEventLatency(b *testing.B) {
	s := newServer(b, Config{})
	sock := filepath.Join(b.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = s.ServeUnix(ctx, l, time.Minute) }()
	c := client.NewUnix(sock)
	await := func(st *client.EventStream, want func(api.Event) bool) {
		for {
			select {
			case ev, ok := <-st.C:
				if !ok {
					b.Fatalf("the stream ended: %v", st.Err())
				}
				if want(ev) {
					return
				}
			case <-time.After(time.Minute):
				b.Fatal("no event after a minute")
			}
		}
	}
	b.Run("lifecycle", func(b *testing.B) {
		st, err := c.Events(ctx, []string{api.EventTypeLifecycle})
		if err != nil {
			b.Fatal(err)
		}
		e := s.eng.Fresh()
		defer e.Close()
		for i := 0; b.Loop(); i++ {
			if err := e.CreateProfile(ctx, &store.Profile{Name: fmt.Sprint("p", i)}); err != nil {
				b.Fatal(err)
			}
			await(st, func(api.Event) bool { return true })
		}
	})
	b.Run("operation", func(b *testing.B) {
		st, err := c.Events(ctx, []string{api.EventTypeOperation})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			s.async("nothing", nil, func(context.Context, *engine.Engine) error { return nil }).Render(discard{})
			await(st, func(ev api.Event) bool {
				var op api.Operation
				return json.Unmarshal(ev.Metadata, &op) == nil && op.StatusCode == api.Success
			})
		}
	})
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
