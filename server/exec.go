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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/runtime/container"
)

// connectTimeout bounds the wait for an exec's websockets: an operation
// whose client never connects them ends rather than wait forever.
const connectTimeout = 30 * time.Second

// execReadLimit is the largest message an exec's websocket takes: a
// chunk of input.
const execReadLimit = 1 << 20

func (s *Server) execRoutes() {
	s.Handle("POST /1.0/instances/{name}/exec", s.postExec, TrustedOnly)
}

// postExec runs a command in an instance, in a websocket operation: the
// process starts once the client has connected every websocket.
func (s *Server) postExec(e *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstanceExecPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	switch {
	case len(req.Command) == 0 || req.Command[0] == "":
		return Errorf(http.StatusBadRequest, "command: give the program to run")
	case req.RecordOutput:
		return Errorf(http.StatusBadRequest, "record-output is not served: silo does not keep the output of exec; read it from the websockets")
	case req.Width < 0 || req.Height < 0:
		return Errorf(http.StatusBadRequest, "width %d and height %d: not negative", req.Width, req.Height)
	}
	env := make([]string, 0, len(req.Environment))
	for _, k := range slices.Sorted(maps.Keys(req.Environment)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return Errorf(http.StatusBadRequest, "environment: %q is not a variable's name", k)
		}
		env = append(env, k+"="+req.Environment[k])
	}
	tty := req.Interactive && req.WaitForWS
	x, err := e.Exec(r.Context(), name, engine.ExecOptions{TTY: tty, Env: env, Cwd: req.Cwd, Args: req.Command,
		UID: req.User, GID: req.Group})
	if err != nil {
		return Error(err)
	}
	description := "Executing command in instance " + name
	if !req.WaitForWS {
		// Nobody to read from or write to: the command runs at once.
		o := newOperation(api.ClassTask, description, instanceResource(name))
		return s.run(o, func(context.Context, *engine.Engine) error {
			return runExec(o, x, nil, 0, 0)
		})
	}
	fds := []string{"0", "control"}
	if !tty {
		fds = []string{"0", "1", "2", "control"}
	}
	sess := &execSession{secrets: map[string]string{}, conns: map[string]*websocket.Conn{}, all: make(chan struct{}), ended: make(chan struct{})}
	for _, fd := range fds {
		sess.secrets[fd] = secret()
	}
	o := newOperation(api.ClassWebsocket, description, instanceResource(name))
	o.op.Metadata = map[string]any{"fds": maps.Clone(sess.secrets)}
	o.connect = sess.connect
	return s.run(o, func(context.Context, *engine.Engine) error {
		defer sess.close()
		select {
		case <-sess.all:
		case <-time.After(connectTimeout):
			return fmt.Errorf("the websockets of the exec were not all connected within %s", connectTimeout)
		}
		return runExec(o, x, sess, req.Width, req.Height)
	})
}

func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runExec runs the process with its streams on the session's websockets
// (none with a nil session: no input, and the output thrown away), and
// sets the operation's return to its exit code.
func runExec(o *operation, x *container.Exec, sess *execSession, width, height int) error {
	ctx := context.Background()
	var stdin io.Reader = strings.NewReader("")
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if sess != nil {
		in := &wsStream{c: sess.conns["0"]}
		stdin, stdout = in, in
		if c := sess.conns["1"]; c != nil {
			c.CloseRead(ctx)
			stdout = &wsStream{c: c}
			c2 := sess.conns["2"]
			c2.CloseRead(ctx)
			stderr = &wsStream{c: c2}
		}
	}
	p, err := x.Start(stdin, stdout, stderr, width, height)
	if err != nil {
		return err
	}
	ended := make(chan struct{})
	if sess != nil {
		go sess.control(p, ended)
	}
	code, err := p.Wait()
	close(ended)
	if err != nil {
		return err
	}
	o.setMetadata("return", code)
	return nil
}

// execSession is the websockets of one exec, each connected by a client
// that presents its secret.
type execSession struct {
	secrets map[string]string // by fd: "0", "1", "2", "control"
	mu      sync.Mutex
	conns   map[string]*websocket.Conn // those connected, or being connected (nil)
	all     chan struct{}              // closed once every one is connected
	ended   chan struct{}              // closed once the exec is over
}

// connect answers the websocket request that presents secret.
func (x *execSession) connect(r *http.Request, secret string) Response {
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
		return Errorf(http.StatusGone, "the exec is over")
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
		c.SetReadLimit(execReadLimit)
		select {
		case <-x.ended: // over while it was accepted
			_ = c.Close(websocket.StatusGoingAway, "the exec is over")
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

// control carries out the client's control messages until the process
// ends. A client that goes away while the process runs has it killed,
// as a dropped terminal would.
func (x *execSession) control(p *container.Process, ended <-chan struct{}) {
	c := x.conns["control"]
	for {
		var msg api.InstanceExecControl
		if err := wsjson.Read(context.Background(), c, &msg); err != nil {
			select {
			case <-ended:
			default:
				slog.Info("exec: the client went away; the process is killed", "error", err)
				_ = p.Signal(syscall.SIGKILL)
			}
			return
		}
		switch msg.Command {
		case api.ExecWindowResize:
			w, errW := strconv.Atoi(msg.Args["width"])
			h, errH := strconv.Atoi(msg.Args["height"])
			if errW != nil || errH != nil || w <= 0 || h <= 0 {
				slog.Debug("exec: a bad window size", "args", msg.Args)
				continue
			}
			if err := p.Resize(w, h); err != nil {
				slog.Debug("exec: resize", "error", err)
			}
		case api.ExecSignal:
			if err := p.Signal(syscall.Signal(msg.Signal)); err != nil {
				slog.Debug("exec: signal", "signal", msg.Signal, "error", err)
			}
		default:
			slog.Debug("exec: an unknown control message", "command", msg.Command)
		}
	}
}

// close closes the websockets once the exec is over: the client reads
// the end of its output, and the handlers that accepted them return.
func (x *execSession) close() {
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
