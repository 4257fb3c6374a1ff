package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/events"
)

// keepDone is how long a finished operation stays listed, for a client
// that asks how it ended.
const keepDone = 5 * time.Minute

// operations are the operations of this server, in memory: the engine's
// work is crash-safe through its journal, and an operation of a server
// that died is finished or undone at the next start, so there is nothing
// an operation's record would add across a restart.
type operations struct {
	mu  sync.Mutex
	ops map[string]*operation
	wg  sync.WaitGroup // the operations running
}

type operation struct {
	mu       sync.Mutex
	op       api.Operation
	finished time.Time
	done     chan struct{}
	// connect serves the websocket whose secret a request presents, for
	// an operation that has websockets.
	connect func(r *http.Request, secret string) Response
}

func newOperations() *operations { return &operations{ops: map[string]*operation{}} }

// async runs fn in an operation, with an engine of its own and a context
// that outlives the request, and answers the operation at once. Each
// change of its state is an operation event, as LXD's: created (pending),
// running, then success or failure.
func (s *Server) async(description string, resources map[string][]string, fn func(ctx context.Context, e *engine.Engine) error) Response {
	return s.run(newOperation(api.ClassTask, description, resources), fn)
}

// newOperation is an operation of class, for run to carry out.
func newOperation(class, description string, resources map[string][]string) *operation {
	return &operation{done: make(chan struct{}), op: api.Operation{ID: newUUID(), Class: class,
		Description: description, CreatedAt: time.Now().UTC(), Resources: resources}}
}

// run carries out operation o, as async does.
func (s *Server) run(o *operation, fn func(ctx context.Context, e *engine.Engine) error) Response {
	o.set(s, api.Pending, nil)
	o.set(s, api.Running, nil)
	s.ops.add(o)
	snapshot := o.get()
	go func() {
		defer s.ops.wg.Done()
		e := s.eng.Fresh()
		defer e.Close()
		err := fn(context.Background(), e)
		if err != nil {
			slog.Warn("operation failed", "id", o.op.ID, "operation", o.op.Description, "error", err)
			o.set(s, api.Failure, err)
		} else {
			o.set(s, api.Success, nil)
		}
		close(o.done)
	}()
	return &asyncResponse{op: snapshot}
}

// set moves o to status, with err when it failed, and publishes the
// operation event of the change.
func (o *operation) set(s *Server, status api.StatusCode, err error) {
	o.mu.Lock()
	o.op.Status, o.op.StatusCode = status.String(), status
	if err != nil {
		o.op.Err = strings.Join(strings.Fields(err.Error()), " ")
		o.op.ErrKind = errkind.Name(err)
	}
	if status == api.Success || status == api.Failure {
		o.finished = time.Now()
	}
	op := o.op
	o.mu.Unlock()
	ev, evErr := events.Operation(op)
	if evErr != nil {
		slog.Warn("operation event", "id", op.ID, "error", evErr)
		return
	}
	s.eng.Events().Publish(ev)
}

func (ops *operations) add(o *operation) {
	ops.mu.Lock()
	defer ops.mu.Unlock()
	for id, old := range ops.ops {
		old.mu.Lock()
		if !old.finished.IsZero() && time.Since(old.finished) > keepDone {
			delete(ops.ops, id)
		}
		old.mu.Unlock()
	}
	ops.ops[o.op.ID] = o
	ops.wg.Add(1)
}

func (ops *operations) find(id string) (*operation, error) {
	ops.mu.Lock()
	defer ops.mu.Unlock()
	o := ops.ops[id]
	if o == nil {
		return nil, errkind.Wrap(errkind.NotFound, "operation %q not found", id)
	}
	return o, nil
}

func (ops *operations) list() []*api.Operation {
	ops.mu.Lock()
	defer ops.mu.Unlock()
	out := []*api.Operation{}
	for _, o := range ops.ops {
		out = append(out, o.get())
	}
	slices.SortFunc(out, func(a, b *api.Operation) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// setMetadata sets a key of the operation's metadata. The map is copied,
// as get's copies share it.
func (o *operation) setMetadata(key string, value any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := maps.Clone(o.op.Metadata)
	if m == nil {
		m = map[string]any{}
	}
	m[key] = value
	o.op.Metadata = m
}

// get is a copy of the operation as it stands.
func (o *operation) get() *api.Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.op
	return &c
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (s *Server) operationRoutes() {
	s.Handle("GET /1.0/operations", s.getOperations, TrustedOnly)
	s.Handle("GET /1.0/operations/{id}", s.getOperation, TrustedOnly)
	s.Handle("GET /1.0/operations/{id}/wait", s.waitOperation, TrustedOnly)
	s.Handle("GET /1.0/operations/{id}/websocket", s.operationWebsocket, TrustedOnly)
}

// operationWebsocket connects a websocket of an operation that has them,
// to the client that presents its secret.
func (s *Server) operationWebsocket(_ *engine.Engine, r *http.Request) Response {
	o, err := s.ops.find(r.PathValue("id"))
	if err != nil {
		return Error(err)
	}
	if o.connect == nil {
		return Errorf(http.StatusBadRequest, "operation %s has no websockets", o.op.ID)
	}
	return o.connect(r, r.URL.Query().Get("secret"))
}

// getOperations lists the operations by status, as LXD does: paths, or
// with recursion the operations.
func (s *Server) getOperations(_ *engine.Engine, r *http.Request) Response {
	rec, err := recursion(r)
	if err != nil {
		return Error(err)
	}
	byStatus := map[string][]any{}
	for _, op := range s.ops.list() {
		key := strings.ToLower(op.Status)
		if rec == 0 {
			byStatus[key] = append(byStatus[key], api.Path("operations", op.ID))
		} else {
			byStatus[key] = append(byStatus[key], op)
		}
	}
	return Sync(byStatus)
}

func (s *Server) getOperation(_ *engine.Engine, r *http.Request) Response {
	o, err := s.ops.find(r.PathValue("id"))
	if err != nil {
		return Error(err)
	}
	return Sync(o.get())
}

// waitOperation answers the operation once it ends, or as it stands after
// timeout seconds (-1 or absent: no limit).
func (s *Server) waitOperation(_ *engine.Engine, r *http.Request) Response {
	o, err := s.ops.find(r.PathValue("id"))
	if err != nil {
		return Error(err)
	}
	timeout := -1.0
	if t := r.URL.Query().Get("timeout"); t != "" {
		if timeout, err = strconv.ParseFloat(t, 64); err != nil {
			return Errorf(http.StatusBadRequest, "timeout %q: a number of seconds is needed", t)
		}
	}
	var expire <-chan time.Time
	if timeout >= 0 {
		expire = time.After(time.Duration(timeout * float64(time.Second)))
	}
	select {
	case <-o.done:
	case <-expire:
	case <-r.Context().Done():
		return Errorf(http.StatusRequestTimeout, "the client went away")
	}
	return Sync(o.get())
}

// recursion reads the recursion parameter: 0 (paths), 1 (objects) or 2
// (objects with their state).
func recursion(r *http.Request) (int, error) {
	v := r.URL.Query().Get("recursion")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 2 {
		return 0, errkind.Wrap(errkind.Invalid, "recursion %q: 0, 1 or 2", v)
	}
	return n, nil
}
