package client

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/silo-dev/silo/api"
)

// session is the websockets of a websocket operation (an exec, a
// console), connected by the secrets in its metadata.fds.
type session struct {
	op      *Operation
	conns   map[string]*websocket.Conn
	control *websocket.Conn
	outputs sync.WaitGroup
}

// connect connects every websocket of op, which must have those of want
// among them; what names the operation in errors.
func (c *Client) connect(ctx context.Context, op *Operation, what string, want ...string) (*session, error) {
	fds, _ := op.Metadata["fds"].(map[string]any)
	s := &session{op: op, conns: map[string]*websocket.Conn{}}
	for fd, v := range fds {
		secret, _ := v.(string)
		conn, err := c.websocket(ctx, op.ID, secret)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s: websocket %s: %w", what, fd, err)
		}
		s.conns[fd] = conn
	}
	for _, fd := range want {
		if s.conns[fd] == nil {
			s.close()
			return nil, fmt.Errorf("%s: the server answered websockets %v", what, fds)
		}
	}
	s.control = s.conns["control"]
	// The server writes nothing on the control websocket: it is read
	// only for its closing.
	s.control.CloseRead(ctx)
	return s, nil
}

// websocket connects the websocket of operation id that secret opens.
func (c *Client) websocket(ctx context.Context, id, secret string) (*websocket.Conn, error) {
	conn, err := c.dial(ctx, api.Path("operations", id)+"/websocket", query{"secret": {secret}})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(-1)
	return conn, nil
}

// relay copies an output of the operation until the server closes it.
func (s *session) relay(w io.Writer, r io.Reader) {
	s.outputs.Add(1)
	go func() {
		defer s.outputs.Done()
		_, _ = io.Copy(w, r)
	}()
}

// Resize sets the size of the terminal.
func (s *session) Resize(ctx context.Context, width, height int) error {
	return wsjson.Write(ctx, s.control, api.InstanceExecControl{Command: api.ExecWindowResize,
		Args: map[string]string{"width": strconv.Itoa(width), "height": strconv.Itoa(height)}})
}

// wait waits for the operation to end and its output to be relayed, and
// returns its error if it failed.
func (s *session) wait(ctx context.Context) error {
	err := s.op.Wait(ctx)
	if err == nil {
		s.outputs.Wait()
	}
	s.close()
	return err
}

func (s *session) close() {
	for _, c := range s.conns {
		_ = c.CloseNow()
	}
}
