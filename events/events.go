// Package events carries what /1.0/events and `silo monitor` show:
// lifecycle events, which every silo process writes to the store's event
// log in the transaction of the change they tell of, and operation and
// logging events, which a process publishes to its own subscribers only.
//
// A subscriber follows the log from a sequence number and wakes, through
// inotify on the database file, as soon as any process commits to it: a
// command typed on the host is seen by a server at once, with no daemon
// between them.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// Record writes a lifecycle event to the log, in tx: action happened to
// the object at source (an api path), with details in context.
func Record(tx *store.Tx, action, source string, context map[string]any) error {
	ev, err := Lifecycle(action, source, context)
	if err != nil {
		return err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = tx.AppendEvent(data)
	return err
}

// Lifecycle is the event of action on the object at source.
func Lifecycle(action, source string, context map[string]any) (api.Event, error) {
	name, err := url.PathUnescape(path.Base(source))
	if err != nil {
		return api.Event{}, fmt.Errorf("event source %q: %w", source, err)
	}
	ev, err := newEvent(api.EventTypeLifecycle, api.EventLifecycle{Action: action, Source: source, Context: context, Name: name})
	ev.Project = api.ProjectDefault
	return ev, err
}

// Operation is the event of op's state.
func Operation(op api.Operation) (api.Event, error) {
	ev, err := newEvent(api.EventTypeOperation, op)
	ev.Project = api.ProjectDefault
	return ev, err
}

func newEvent(typ string, metadata any) (api.Event, error) {
	data, err := json.Marshal(metadata)
	if err != nil {
		return api.Event{}, err
	}
	return api.Event{Type: typ, Timestamp: time.Now().UTC(), Metadata: data, Location: api.LocationNone}, nil
}

// Entry is an event as a subscriber receives it.
type Entry struct {
	// Seq is the event's sequence number in the log; 0 for an event
	// that was published, not logged.
	Seq   uint64
	Event api.Event
	// Missed counts the events of the subscription's types that came
	// before this one but never reached the subscriber: pushed out of
	// the log before it read them, or published while it was too far
	// behind to take them.
	Missed uint64
}

// Bus delivers the events of one store to the subscribers of one process.
type Bus struct {
	st *store.Store

	mu   sync.Mutex
	subs map[*Subscription]bool
	// watch is the one inotify watch of the database file, shared by
	// the subscribers that follow the log, while there are any: a server
	// with many clients must not take an inotify instance for each.
	watch    *watcher
	watchers int
}

// New returns the bus of st's event log.
func New(st *store.Store) *Bus {
	return &Bus{st: st, subs: map[*Subscription]bool{}}
}

// Publish hands ev to the subscribers of its type, without logging it: an
// operation or logging event, which only this process's subscribers see.
// It never blocks: a subscriber too far behind is told it missed it.
func (b *Bus) Publish(ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.wants(ev.Type) {
			s.offer(ev)
		}
	}
}

// Last is the sequence number of the last logged event: Subscribe from it
// to see only what happens from now on.
func (b *Bus) Last() (uint64, error) {
	var last uint64
	err := b.st.View(func(tx *store.Tx) error { last = tx.LastEvent(); return nil })
	return last, err
}

// Subscribe delivers the events of types (every type when empty): the
// logged ones after sequence number after, then each event as it happens,
// until ctx ends. Then C is closed, and Err says why.
func (b *Bus) Subscribe(ctx context.Context, types []string, after uint64) (*Subscription, error) {
	for _, t := range types {
		if !slices.Contains(api.EventTypes, t) {
			return nil, errkind.Wrap(errkind.Invalid, "unknown event type %q: use %s", t, strings.Join(api.EventTypes, ", "))
		}
	}
	out := make(chan Entry)
	s := &Subscription{C: out, types: types, pub: make(chan api.Event, publishQueue)}
	if s.wants(api.EventTypeLifecycle) {
		s.wake = make(chan struct{}, 1)
	}
	if err := b.add(s); err != nil {
		return nil, err
	}
	go func() {
		defer func() {
			b.remove(s)
			close(out)
		}()
		s.err = s.run(ctx, b.st, after, out)
	}()
	return s, nil
}

// add registers s, and watches the database for it if it follows the log.
func (b *Bus) add(s *Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.wake != nil {
		if b.watchers == 0 {
			w, err := watch(b.st.Path())
			if err != nil {
				return err
			}
			b.watch = w
			go b.wakeAll(w)
		}
		b.watchers++
	}
	b.subs[s] = true
	return nil
}

// remove forgets s, and ends the watch when no one follows the log.
func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
	if s.wake != nil {
		if b.watchers--; b.watchers == 0 {
			b.watch.Close()
			b.watch = nil
		}
	}
}

// wakeAll wakes the subscribers that follow the log at each change that
// w sees, until w is closed.
func (b *Bus) wakeAll(w *watcher) {
	for range w.C {
		b.mu.Lock()
		for s := range b.subs {
			if s.wake != nil {
				select {
				case s.wake <- struct{}{}:
				default: // already woken: it reads everything new anyway
				}
			}
		}
		b.mu.Unlock()
	}
}

// publishQueue is how many published events a subscriber may lag behind.
const publishQueue = 256

// Subscription is one subscriber's stream of events.
type Subscription struct {
	// C carries the events, oldest first.
	C     <-chan Entry
	types []string
	pub   chan api.Event
	wake  chan struct{} // when it follows the log: the database changed

	mu     sync.Mutex
	missed uint64 // published events dropped since the last delivered
	err    error
}

// Err is why C was closed: ctx's error, or a failure to read the log.
func (s *Subscription) Err() error { return s.err }

func (s *Subscription) wants(typ string) bool {
	return len(s.types) == 0 || slices.Contains(s.types, typ)
}

func (s *Subscription) offer(ev api.Event) {
	select {
	case s.pub <- ev:
	default:
		s.mu.Lock()
		s.missed++
		s.mu.Unlock()
	}
}

// run reads the log after seq each time the database changes, and passes
// on published events between.
func (s *Subscription) run(ctx context.Context, st *store.Store, seq uint64, out chan<- Entry) error {
	send := func(e Entry) error {
		select {
		case out <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A change committed between the subscription's watch and this first
	// read is in the read; one committed after it wakes the loop.
	read := s.wake != nil
	for {
		if read {
			logged, err := readLog(st, seq)
			if err != nil {
				return err
			}
			for _, e := range logged {
				seq = e.Seq
				if err := send(e); err != nil {
					return err
				}
			}
			read = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
			read = true
		case ev := <-s.pub:
			s.mu.Lock()
			missed := s.missed
			s.missed = 0
			s.mu.Unlock()
			if err := send(Entry{Event: ev, Missed: missed}); err != nil {
				return err
			}
		}
	}
}

// readLog returns the logged events after seq, the first of them with the
// count of those pushed out of the log before it.
func readLog(st *store.Store, seq uint64) ([]Entry, error) {
	var entries []Entry
	err := st.View(func(tx *store.Tx) error {
		missed, err := tx.EventsAfter(seq, func(seq uint64, data []byte) error {
			var ev api.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			entries = append(entries, Entry{Seq: seq, Event: ev})
			return nil
		})
		if len(entries) > 0 {
			entries[0].Missed = missed
		}
		return err
	})
	return entries, err
}
