package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/silo-dev/silo/engine"
)

func (s *Server) eventRoutes() {
	s.Handle("GET /1.0/events", s.getEvents, TrustedOnly)
}

// getEvents streams the events of the types the type parameter lists
// (comma-separated; every type when absent) over a websocket, one JSON
// message each, from the moment of the request until the client goes or
// the server ends.
func (s *Server) getEvents(e *engine.Engine, r *http.Request) Response {
	var types []string
	if t := r.URL.Query().Get("type"); t != "" {
		types = strings.Split(t, ",")
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return Errorf(http.StatusBadRequest, "%s is a websocket: the request must ask for an upgrade", r.URL.Path)
	}
	bus := e.Events()
	// From the last logged event, and subscribed before the upgrade: what
	// happens once the client has its answer reaches it.
	after, err := bus.Last()
	if err != nil {
		return Error(err)
	}
	ctx, cancel := context.WithCancel(s.streams)
	sub, err := bus.Subscribe(ctx, types, after)
	if err != nil {
		cancel()
		return Error(err)
	}
	return responseFunc(func(w http.ResponseWriter) {
		defer cancel()
		s.streamWG.Add(1)
		defer s.streamWG.Done()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			slog.Debug("events: no websocket", "error", err)
			return
		}
		// The client sends nothing: a read ends when it goes, and ends
		// the subscription with it. Not on ctx, whose end at shutdown
		// would drop the connection before it is closed properly.
		gone := conn.CloseRead(context.Background())
		stop := context.AfterFunc(gone, cancel)
		defer stop()
		for entry := range sub.C {
			if entry.Missed > 0 {
				slog.Warn("an events client missed events: it read too slowly", "missed", entry.Missed)
			}
			data, err := json.Marshal(entry.Event)
			if err == nil {
				err = conn.Write(ctx, websocket.MessageText, data)
			}
			if err != nil {
				slog.Debug("events: the client went", "error", err)
				break
			}
		}
		cancel()
		for range sub.C { // until the subscription has let go
		}
		switch err := sub.Err(); {
		case s.streams.Err() != nil:
			conn.Close(websocket.StatusGoingAway, "the server is shutting down")
		case err != nil && !errors.Is(err, context.Canceled):
			slog.Warn("events: reading the log", "error", err)
			conn.Close(websocket.StatusInternalError, "reading the event log failed")
		default:
			conn.CloseNow()
		}
	})
}
