package server

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/runtime/container"
)

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
	sess := newSession("exec", fds...)
	return s.runSession(sess, description, name, func(o *operation, _ *engine.Engine) error {
		return runExec(o, x, sess, req.Width, req.Height)
	})
}

// runExec runs the process with its streams on the session's websockets
// (none with a nil session: no input, and the output thrown away), and
// sets the operation's return to its exit code.
func runExec(o *operation, x *container.Exec, sess *wsSession, width, height int) error {
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
		go func() {
			// A client that goes away while the process runs has it
			// killed, as a dropped terminal would.
			err := sess.control(p.Resize, p.Signal)
			select {
			case <-ended:
			default:
				slog.Info("exec: the client went away; the process is killed", "error", err)
				_ = p.Signal(syscall.SIGKILL)
			}
		}()
	}
	code, err := p.Wait()
	close(ended)
	if err != nil {
		return err
	}
	o.setMetadata("return", code)
	return nil
}
