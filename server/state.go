package server

import (
	"context"
	"net/http"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) stateRoutes() {
	s.Handle("GET /1.0/instances/{name}/state", s.getState, TrustedOnly)
	s.Handle("PUT /1.0/instances/{name}/state", s.putState, TrustedOnly)
}

func (s *Server) getState(e *engine.Engine, r *http.Request) Response {
	inst, err := e.Instance(r.Context(), r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	return Sync(inst.State)
}

// putState starts, stops or restarts an instance, or waits until it is
// ready, in an operation.
func (s *Server) putState(_ *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstanceStatePut
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	timeout := engine.DefaultStopTimeout
	if req.Timeout > 0 {
		timeout = time.Duration(req.Timeout) * time.Second
	}
	var act func(ctx context.Context, e *engine.Engine) error
	var doing string
	switch req.Action {
	case "start":
		doing, act = "Starting", func(ctx context.Context, e *engine.Engine) error { return e.Start(ctx, name) }
	case "stop":
		doing, act = "Stopping", func(ctx context.Context, e *engine.Engine) error { return e.Stop(ctx, name, req.Force, timeout) }
	case "restart":
		doing, act = "Restarting", func(ctx context.Context, e *engine.Engine) error { return e.Restart(ctx, name, req.Force, timeout) }
	case "wait":
		wait := engine.DefaultReadyTimeout
		if req.Timeout > 0 {
			wait = time.Duration(req.Timeout) * time.Second
		}
		doing, act = "Waiting for", func(ctx context.Context, e *engine.Engine) error { return e.Wait(ctx, name, wait) }
	default:
		return Errorf(http.StatusBadRequest, "action %q: start, stop, restart or wait", req.Action)
	}
	return s.async(doing+" instance "+name, instanceResource(name), act)
}
