package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

// connectTimeout bounds the wait for an operation's websockets: an
// operation whose client never connects them ends rather than wait
// forever.
const connectTimeout = 30 * time.Second

// wsReadLimit is the largest message a session's websocket takes: a
// chunk of input.
const wsReadLimit = 1 << 20

// wsSession is the websockets of one websocket operation (an exec, a
// console), each connected by a client that presents its secret.
type wsSession struct {
	what    string            // "exec", "console": what the errors name
	secrets map[string]string // by fd: "0", "1", "2", "control"
	mu      sync.Mutex
	conns   map[string]*websocket.Conn // those connected, or being connected (nil)
	all     chan struct{}              // closed once every one is connected
	ended   chan struct{}              // closed once the operation is over
}

func newSession(what string, fds ...string) *wsSession {
	x := &wsSession{what: what, secrets: map[string]string{}, conns: map[string]*websocket.Conn{},
		all: make(chan struct{}), ended: make(chan struct{})}
	for _, fd := range fds {
		x.secrets[fd] = secret()
	}
	return x
}

func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runSession answers a websocket operation of instance name that runs fn
// once the client has connected every websocket of sess; the websockets
// close when fn returns.
func (s *Server) runSession(sess *wsSession, description, name string, fn func(o *operation, e *engine.Engine) error) Response {
	o := newOperation(api.ClassWebsocket, description, instanceResource(name))
	o.op.Metadata = map[string]any{"fds": maps.Clone(sess.secrets)}
	o.connect = sess.connect
	return s.run(o, func(_ context.Context, e *engine.Engine) error {
		defer sess.close()
		select {
		case <-sess.all:
		case <-time.After(connectTimeout):
			return fmt.Errorf("the websockets of the %s were not all connected within %s", sess.what, connectTimeout)
		}
		return fn(o, e)
	})
}

// connect answers the websocket request that presents secret.
func (x *wsSession) connect(r *http.Request, secret string) Response {
	fd := ""
	for k, s := range x.secrets {
		if subtle.ConstantTimeCompare([]byte(s), []byte(secret)) == 1 {
			fd = k
		}
	}
	if fd == "" {
		return Errorf(http.StatusForbidden, "not authorized: the secret is not one of this operation's websockets")
	}
	x.mu.Lock()
	_, taken := x.conns[fd]
	select {
	case <-x.ended:
		x.mu.Unlock()
		return Errorf(http.StatusGone, "the %s is over", x.what)
	default:
	}
	if taken {
		x.mu.Unlock()
		return Errorf(http.StatusConflict, "websocket %s is connected already", fd)
	}
	x.conns[fd] = nil // reserved while it is accepted
	x.mu.Unlock()
	return responseFunc(func(w http.ResponseWriter) {
		c, err := websocket.Accept(w, r, nil)
		x.mu.Lock()
		defer x.mu.Unlock()
		if err != nil {
			delete(x.conns, fd) // Accept has answered why
			return
		}
		c.SetReadLimit(wsReadLimit)
		select {
		case <-x.ended: // over while it was accepted
			_ = c.Close(websocket.StatusGoingAway, "the "+x.what+" is over")
			return
		default:
		}
		x.conns[fd] = c
		for _, c := range x.conns {
			if c == nil {
				return
			}
		}
		if len(x.conns) == len(x.secrets) {
			close(x.all)
		}
	})
}

// control carries out the client's control messages, window-resize with
// resize and signal with signal (nil: refused), until the control
// websocket closes; it returns why it did.
func (x *wsSession) control(resize func(width, height int) error, signal func(syscall.Signal) error) error {
	c := x.conns["control"]
	for {
		var msg api.InstanceExecControl
		if err := wsjson.Read(context.Background(), c, &msg); err != nil {
			return err
		}
		switch {
		case msg.Command == api.ExecWindowResize:
			w, errW := strconv.Atoi(msg.Args["width"])
			h, errH := strconv.Atoi(msg.Args["height"])
			if errW != nil || errH != nil || w <= 0 || h <= 0 {
				slog.Debug(x.what+": a bad window size", "args", msg.Args)
				continue
			}
			if err := resize(w, h); err != nil {
				slog.Debug(x.what+": resize", "error", err)
			}
		case msg.Command == api.ExecSignal && signal != nil:
			if err := signal(syscall.Signal(msg.Signal)); err != nil {
				slog.Debug(x.what+": signal", "signal", msg.Signal, "error", err)
			}
		default:
			slog.Debug(x.what+": an unknown control message", "command", msg.Command)
		}
	}
}

// close closes the websockets once the operation is over: the client
// reads the end of its output, and the handlers that accepted them
// return.
func (x *wsSession) close() {
	x.mu.Lock()
	close(x.ended)
	conns := slices.Collect(maps.Values(x.conns))
	x.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { _ = c.Close(websocket.StatusNormalClosure, "") })
		}
	}
	wg.Wait()
}

// wsStream is a stream over a websocket, as LXD's: binary messages carry
// it, and it ends at a normal close or at a text message, the barrier
// that LXD's clients send at the end of their input.
type wsStream struct {
	c *websocket.Conn
	r io.Reader // the message being read
}

func (w *wsStream) Read(p []byte) (int, error) {
	for {
		if w.r == nil {
			typ, r, err := w.c.Reader(context.Background())
			if s := websocket.CloseStatus(err); s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
			if typ == websocket.MessageText {
				return 0, io.EOF
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if err == io.EOF {
			w.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (w *wsStream) Write(p []byte) (int, error) {
	if err := w.c.Write(context.Background(), websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
