// Package server serves the engine over a REST API shaped like LXD's /1.0:
// one file per collection, every answer in LXD's envelope (sync, async
// with an operation, or error), and long work carried out by operations
// that clients wait on. Each request gets an engine of its own, as a
// command does, so that the server holds no database and no pool lock
// between requests and runs beside the CLI as one more command would.
package server

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/silo-dev/silo/engine"
)

// Config is what a Server needs besides its engine.
type Config struct {
	// Trusted says whether a request that did not come over the unix
	// socket is from a client the server trusts (a TLS listener checks the
	// client's certificate). Requests over the unix socket always are;
	// with Trusted nil, no other request is.
	Trusted func(r *http.Request) bool
}

// Access says who may call a route.
type Access int

const (
	// TrustedOnly routes answer 403 to an untrusted client.
	TrustedOnly Access = iota
	// Untrusted routes answer anyone (GET /1.0, and what a client
	// presents a trust token to).
	Untrusted
)

// HandlerFunc answers a request with an engine of its own, which the
// server closes once the answer is rendered.
type HandlerFunc func(e *engine.Engine, r *http.Request) Response

// Server is the REST API of one state directory.
type Server struct {
	eng *engine.Engine
	cfg Config
	mux *http.ServeMux
	// aliasMux routes the paths under aliasPrefix: LXD's
	// /1.0/images/aliases/NAME has a literal segment where
	// /1.0/images/FINGERPRINT/export has a wildcard, which one
	// http.ServeMux refuses to hold both of.
	aliasMux *http.ServeMux
	paths    map[string]map[string]bool // the methods routed on each path
	routes   []string                   // the patterns routed, in order
	ops      *operations
	// streams is done when the server ends, for the websockets, which
	// http.Server.Shutdown neither closes nor waits for once hijacked;
	// streamWG counts them.
	streams      context.Context
	closeStreams context.CancelFunc
	streamWG     sync.WaitGroup
}

// New returns the server of eng, an engine opened with engine.Open (which
// has recovered what died before), with every route of the API.
func New(eng *engine.Engine, cfg Config) *Server {
	s := &Server{eng: eng, cfg: cfg, mux: http.NewServeMux(), aliasMux: http.NewServeMux(), paths: map[string]map[string]bool{}, ops: newOperations()}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	noPath := func(w http.ResponseWriter, r *http.Request) {
		Errorf(http.StatusNotFound, "%s: no such path", r.URL.Path).Render(w)
	}
	s.mux.HandleFunc("/", noPath)
	s.aliasMux.HandleFunc("/", noPath)
	s.Handle("GET /1.0", s.getServer, Untrusted)
	s.instanceRoutes()
	s.stateRoutes()
	s.snapshotRoutes()
	s.backupRoutes()
	s.fileRoutes()
	s.execRoutes()
	s.consoleRoutes()
	s.operationRoutes()
	s.imageRoutes()
	s.poolRoutes()
	s.volumeRoutes()
	s.networkRoutes()
	s.profileRoutes()
	s.certificateRoutes()
	s.metricsRoutes()
	s.eventRoutes()
	s.methodsNotAllowed()
	return s
}

// Handler is the API, for a listener to serve. Each request is logged at
// debug level (silo --debug serve), and a failure of the server's own at
// warning level.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		s.muxOf(r.URL.Path).ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.code >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		slog.Log(r.Context(), level, "request", "method", r.Method, "uri", r.URL.RequestURI(), "status", sw.code,
			"took", time.Since(start))
	})
}

// statusWriter keeps the status a handler answered, for the log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap, Flush and Hijack keep what the connection can do reachable, for
// streams and websockets.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.code = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Handle routes pattern, "METHOD /path" as http.ServeMux reads it, to h.
// Other methods on the path answer 405 (see methodsNotAllowed).
func (s *Server) Handle(pattern string, h HandlerFunc, access Access) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic("server: a route needs a method: " + pattern)
	}
	s.routes = append(s.routes, pattern)
	if s.paths[path] == nil {
		s.paths[path] = map[string]bool{}
	}
	s.paths[path][method] = true
	s.muxOf(path).HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if access == TrustedOnly && !s.Trusted(r) {
			Errorf(http.StatusForbidden, "not authorized: the client's certificate is not trusted").Render(w)
			return
		}
		s.serve(w, r, h)
	})
}

// methodsNotAllowed answers 405 for the methods of the API that a routed
// path does not serve. Each is routed on its own, not as one pattern of
// every method: that would clash with a route of a wildcard beside it
// (GET /1.0/images/{ref} and /1.0/images/aliases).
func (s *Server) methodsNotAllowed() {
	notAllowed := func(w http.ResponseWriter, r *http.Request) {
		Errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed", r.Method, r.URL.Path).Render(w)
	}
	for path, methods := range s.paths {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if !methods[m] && (m != http.MethodHead || !methods[http.MethodGet]) { // GET serves HEAD too
				s.muxOf(path).HandleFunc(m+" "+path, notAllowed)
			}
		}
	}
}

// aliasPrefix is the start of the paths that aliasMux routes.
const aliasPrefix = "/1.0/images/aliases/"

// muxOf is the mux that routes path.
func (s *Server) muxOf(path string) *http.ServeMux {
	if strings.HasPrefix(path, aliasPrefix) {
		return s.aliasMux
	}
	return s.mux
}

// Routes are the patterns routed ("GET /1.0/instances/{name}"...), for
// the description of the API to be checked against.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// serve runs h with an engine of its own, and answers a panic with a 500
// rather than a dropped connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, h HandlerFunc) {
	e := s.eng.Fresh()
	defer e.Close()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { // a stream cut on purpose
				panic(p)
			}
			slog.Error("request failed", "method", r.Method, "path", r.URL.Path, "panic", p)
			Errorf(http.StatusInternalServerError, "internal error: %v", p).Render(w)
		}
	}()
	h(e, r).Render(w)
}

// Trusted says whether r comes from a client the server trusts.
func (s *Server) Trusted(r *http.Request) bool {
	if isLocal(r.Context()) {
		return true
	}
	return s.cfg.Trusted != nil && s.cfg.Trusted(r)
}

type localKey struct{}

// Local marks ctx as that of a connection over the unix socket, whose
// clients are trusted: the socket's mode and group say who may connect.
func Local(ctx context.Context) context.Context { return context.WithValue(ctx, localKey{}, true) }

func isLocal(ctx context.Context) bool { v, _ := ctx.Value(localKey{}).(bool); return v }

// RecoverEvery finishes or undoes, every interval until ctx is done, what
// commands that died beside the server left: their reservations would
// otherwise refuse the server's requests until the next command ran.
func (s *Server) RecoverEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e := s.eng.Fresh()
		if err := e.Recover(ctx); err != nil {
			slog.Warn("could not recover what a command left", "error", err)
		}
		e.Close()
	}
}

// Wait waits until the operations in flight end or ctx is done, for a
// shutdown that lets work finish.
func (s *Server) Wait(ctx context.Context) error {
	return waitGroup(ctx, &s.ops.wg, "operations still running")
}

// CloseStreams closes the websockets of event streams, telling their
// clients that the server goes away, and waits until they are closed or
// ctx is done.
func (s *Server) CloseStreams(ctx context.Context) error {
	s.closeStreams()
	return waitGroup(ctx, &s.streamWG, "event streams still open")
}

// waitGroup waits for wg, or for ctx to be done: then it says what is
// left, in what.
func waitGroup(ctx context.Context, wg *sync.WaitGroup, what string) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}
