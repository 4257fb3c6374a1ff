package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coder/websocket"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
)

// EventStream is the server's events as they happen.
type EventStream struct {
	// C carries the events, oldest first, and is closed when the stream
	// ends: ctx was done, or the server ended it; Err says which.
	C    <-chan api.Event
	conn *websocket.Conn
	err  error
}

// Err is why C was closed: nil when the caller's context ended it.
func (s *EventStream) Err() error { return s.err }

// Events streams the events of types (every type when empty) from the
// moment it returns until ctx is done or the server ends the stream.
func (c *Client) Events(ctx context.Context, types []string) (*EventStream, error) {
	var q query
	if len(types) > 0 {
		q = query{"type": {strings.Join(types, ",")}}
	}
	conn, err := c.dial(ctx, api.Version+"/events", q)
	if err != nil {
		return nil, err
	}
	out := make(chan api.Event)
	s := &EventStream{C: out, conn: conn}
	go func() {
		defer close(out)
		s.err = s.read(ctx, out)
	}()
	return s, nil
}

// read passes on each message as an event until ctx is done or the
// server closes the stream.
func (s *EventStream) read(ctx context.Context, out chan<- api.Event) error {
	defer s.conn.CloseNow()
	for {
		_, data, err := s.conn.Read(ctx)
		if ctx.Err() != nil {
			s.conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				var ce websocket.CloseError
				errors.As(err, &ce)
				return errkind.Wrap(errkind.Unavailable, "the server ended the event stream: %s", closeReason(ce))
			}
			return errkind.Wrap(errkind.Unavailable, "event stream: %w", err)
		}
		var ev api.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("event stream: unreadable event: %w", err)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			s.conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
}

func closeReason(ce websocket.CloseError) string {
	if ce.Reason != "" {
		return ce.Reason
	}
	return ce.Code.String()
}
