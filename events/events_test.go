package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
)

// patience bounds the wait for an event that must come; it fails a test
// only when the event never does.
const patience = 30 * time.Second

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func record(t *testing.T, st *store.Store, actions ...string) {
	t.Helper()
	if err := st.Update(func(tx *store.Tx) error {
		for _, a := range actions {
			if err := Record(tx, a, api.Path("instances", "web"), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, sub *Subscription) Entry {
	t.Helper()
	select {
	case e, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return e
	case <-time.After(patience):
		t.Fatal("no event came")
	}
	return Entry{}
}

func action(t *testing.T, e Entry) string {
	t.Helper()
	var l api.EventLifecycle
	if err := json.Unmarshal(e.Event.Metadata, &l); err != nil {
		t.Fatal(err)
	}
	return l.Action
}

// A subscriber sees, in order, what another opening of the database
// commits after it subscribed, and nothing from before.
func TestFollowsAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "silo.db")
	st := openStore(t, path)
	record(t, st, api.ActionInstanceCreated)
	bus := New(st)
	last, err := bus.Last()
	if err != nil || last != 1 {
		t.Fatalf("last = %d, %v; want 1", last, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.Subscribe(ctx, nil, last)
	if err != nil {
		t.Fatal(err)
	}
	other := openStore(t, path)
	want := []string{api.ActionInstanceStarted, api.ActionInstanceShutdown, api.ActionInstanceDeleted}
	for _, a := range want {
		record(t, other, a) // a commit each, each waking the subscriber
	}
	for i, a := range want {
		e := next(t, sub)
		if got := action(t, e); got != a || e.Seq != uint64(i+2) || e.Missed != 0 {
			t.Fatalf("event %d: %s seq %d missed %d; want %s seq %d", i, got, e.Seq, e.Missed, a, i+2)
		}
		if e.Event.Type != api.EventTypeLifecycle || e.Event.Location != api.LocationNone || e.Event.Timestamp.IsZero() {
			t.Fatalf("event %d: %+v", i, e.Event)
		}
	}
	cancel()
	for range sub.C {
	}
	if sub.Err() != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", sub.Err())
	}
}

// The log keeps the last EventLogSize events, and a subscriber that asks
// for older ones is told how many it missed.
func TestBoundedAndMissed(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "silo.db"))
	const extra = 500
	actions := make([]string, store.EventLogSize+extra)
	for i := range actions {
		actions[i] = fmt.Sprintf("a%d", i+1)
	}
	record(t, st, actions[:100]...)
	record(t, st, actions[100:]...)
	held := 0
	if err := st.View(func(tx *store.Tx) error {
		missed, err := tx.EventsAfter(0, func(uint64, []byte) error { held++; return nil })
		if missed != extra {
			t.Errorf("missed = %d, want %d", missed, extra)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if held != store.EventLogSize {
		t.Fatalf("the log holds %d events, want %d", held, store.EventLogSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := New(st).Subscribe(ctx, []string{api.EventTypeLifecycle}, 10)
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, sub)
	if e.Seq != extra+1 || e.Missed != extra-10 || action(t, e) != actions[extra] {
		t.Fatalf("first entry: seq %d missed %d %s; want seq %d missed %d", e.Seq, e.Missed, action(t, e), extra+1, extra-10)
	}
	if e := next(t, sub); e.Seq != extra+2 || e.Missed != 0 {
		t.Fatalf("second entry: seq %d missed %d", e.Seq, e.Missed)
	}
}

// Published events reach the subscribers of their type only, and one
// that lags too far behind is told how many it missed.
func TestPublish(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "silo.db"))
	bus := New(st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, err := bus.Subscribe(ctx, []string{api.EventTypeLogging}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := bus.Subscribe(ctx, []string{api.EventTypeOperation}, 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(NewHandler(bus, slog.LevelInfo)).With("instance", "web").WithGroup("req")
	log.Debug("not published")
	log.Warn("disk nearly full", "used", 95)
	e := next(t, logs)
	var l api.EventLogging
	if err := json.Unmarshal(e.Event.Metadata, &l); err != nil {
		t.Fatal(err)
	}
	if e.Event.Type != api.EventTypeLogging || e.Seq != 0 || l.Message != "disk nearly full" || l.Level != "warning" ||
		l.Context["instance"] != "web" || l.Context["req.used"] != "95" || len(l.Context) != 2 {
		t.Fatalf("logging event: %+v %+v", e, l)
	}
	record(t, st, api.ActionInstanceCreated) // not for these subscribers
	op, err := Operation(api.Operation{ID: "1", Class: api.ClassTask, Status: "Running"})
	if err != nil {
		t.Fatal(err)
	}
	// The operation subscriber is not reading: past its queue, events
	// are dropped and counted.
	const sent = publishQueue + 44
	for range sent {
		bus.Publish(op)
	}
	// Each event published is delivered or counted missed, once: the
	// count rides on the next event delivered.
	delivered, missed := 0, uint64(0)
	for delivered+int(missed) < sent {
		e := next(t, ops)
		if e.Event.Type != api.EventTypeOperation {
			t.Fatalf("operation subscriber got %s", e.Event.Type)
		}
		delivered++
		missed += e.Missed
	}
	if missed == 0 || delivered > publishQueue+1 {
		t.Fatalf("delivered %d, missed %d of %d", delivered, missed, sent)
	}
	select {
	case e := <-logs.C:
		t.Fatalf("logging subscriber got %+v", e)
	default:
	}
}

// Many subscribers share one watch of the database, which ends with the
// last of them.
func TestSharedWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "silo.db")
	st := openStore(t, path)
	bus := New(st)
	ctx, cancel := context.WithCancel(context.Background())
	var subs []*Subscription
	for range 200 { // past the kernel's default of 128 inotify instances a user
		sub, err := bus.Subscribe(ctx, []string{api.EventTypeLifecycle}, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	record(t, openStore(t, path), api.ActionInstanceCreated)
	for i, sub := range subs {
		if e := next(t, sub); e.Seq != 1 {
			t.Fatalf("subscriber %d: seq %d", i, e.Seq)
		}
	}
	bus.mu.Lock()
	n := bus.watchers
	bus.mu.Unlock()
	if n != len(subs) {
		t.Fatalf("%d watchers, want %d", n, len(subs))
	}
	cancel()
	for _, sub := range subs {
		for range sub.C {
		}
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	if bus.watch != nil || bus.watchers != 0 || len(bus.subs) != 0 {
		t.Fatalf("after the last subscriber: watch %v, %d watchers, %d subscribers", bus.watch, bus.watchers, len(bus.subs))
	}
}
