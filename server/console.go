package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

func (s *Server) consoleRoutes() {
	s.Handle("POST /1.0/instances/{name}/console", s.postConsole, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}/console", s.getConsoleLog, TrustedOnly)
}

// postConsole attaches a client to the console of a running instance, in
// a websocket operation that lasts until the client detaches (closes a
// websocket), the instance stops, or the server shuts down. Clients
// attach as many at once as they like, as on the host: each sees what init
// writes, and what each types reaches init.
func (s *Server) postConsole(e *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstanceConsolePost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	switch {
	case req.Type == api.ConsoleTypeVGA:
		return Errorf(http.StatusBadRequest, "type vga: silo's instances are containers, whose console is text (type console)")
	case req.Type != "" && req.Type != api.ConsoleTypeConsole:
		return Errorf(http.StatusBadRequest, "type %q: console is the only type", req.Type)
	case req.Width < 0 || req.Height < 0 || req.Width > math.MaxUint16 || req.Height > math.MaxUint16:
		return Errorf(http.StatusBadRequest, "width %d and height %d: each from 0 to %d", req.Width, req.Height, math.MaxUint16)
	}
	con, err := e.Console(r.Context(), name)
	if err != nil {
		return Error(err)
	}
	if con.Socket == "" {
		return Error(errkind.Wrap(errkind.Busy, "instance %q is not running", name))
	}
	sess := newSession("console", "0", "control")
	return s.runSession(sess, "Showing console of instance "+name, name, func(_ *operation, e *engine.Engine) error {
		resize := func(w, h int) error { return e.ResizeConsole(context.Background(), name, w, h) }
		if req.Width > 0 && req.Height > 0 {
			if err := resize(req.Width, req.Height); err != nil {
				slog.Debug("console: resize", "instance", name, "error", err)
			}
		}
		// Attached only now, so that init's output does not pile up
		// while the client connects.
		conn, err := net.Dial("unix", con.Socket)
		if err != nil {
			return fmt.Errorf("attach to the console of %s: %w", name, err)
		}
		defer conn.Close()
		s.relayConsole(sess, conn, resize)
		return nil
	})
}

// relayConsole relays the console on conn both ways over the session's
// websocket "0" and takes resizes on "control", until the client closes
// either (it detached), the console ends (the instance stopped) or the
// server shuts down.
func (s *Server) relayConsole(sess *wsSession, conn net.Conn, resize func(w, h int) error) {
	ws := &wsStream{c: sess.conns["0"]}
	over := make(chan struct{}, 3)
	for _, relay := range []func(){
		func() { _, _ = io.Copy(conn, ws) },
		func() { _, _ = io.Copy(ws, conn) },
		func() { _ = sess.control(resize, nil) },
	} {
		go func() {
			relay()
			over <- struct{}{}
		}()
	}
	select {
	case <-over:
	case <-s.streams.Done():
	}
	// The relays still running end as the console and the websockets
	// close.
}

// getConsoleLog answers what init has written to its console, in this run
// or, for an instance that does not run, in its last one, as LXD's
// console log: plain text, empty when there is none.
func (s *Server) getConsoleLog(e *engine.Engine, r *http.Request) Response {
	con, err := e.Console(r.Context(), r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	// Opened before the answer starts, so that a failure is still an
	// error envelope; a log rotated away meanwhile has nothing to add.
	var files []*os.File
	for _, p := range con.Logs {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return Error(err)
		}
		files = append(files, f)
	}
	return responseFunc(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		for _, f := range files {
			if _, err := io.Copy(w, f); err != nil {
				slog.Debug("the client went before the whole console log", "error", err)
			}
			f.Close()
		}
	})
}
