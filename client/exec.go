package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/silo-dev/silo/api"
)

// ExecStreams are what a process run by Exec reads and writes. With a
// terminal (req.Interactive), all its output goes to Stdout. Stdin is
// read until it ends, or until the process has ended and a read returns.
type ExecStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Exec is a process running in an instance, its streams relayed over the
// operation's websockets.
type Exec struct {
	op      *Operation
	conns   map[string]*websocket.Conn
	control *websocket.Conn
	outputs sync.WaitGroup
}

// Exec runs a command in an instance, as lxc exec does: it connects the
// websockets of the operation the server answers (req.WaitForWS is set),
// and the process starts once they are connected. Canceling ctx cuts
// them, and the server then kills the process.
func (c *Client) Exec(ctx context.Context, name string, req api.InstanceExecPost, s ExecStreams) (*Exec, error) {
	req.WaitForWS = true
	op, err := c.async(ctx, http.MethodPost, api.Path("instances", name)+"/exec", req, nil)
	if err != nil {
		return nil, err
	}
	fds, _ := op.Metadata["fds"].(map[string]any)
	x := &Exec{op: op, conns: map[string]*websocket.Conn{}}
	for fd, v := range fds {
		secret, _ := v.(string)
		conn, err := c.websocket(ctx, op.ID, secret)
		if err != nil {
			x.close()
			return nil, fmt.Errorf("exec in %s: websocket %s: %w", name, fd, err)
		}
		x.conns[fd] = conn
	}
	x.control = x.conns["control"]
	in := x.conns["0"]
	if x.control == nil || in == nil || (!req.Interactive && (x.conns["1"] == nil || x.conns["2"] == nil)) {
		x.close()
		return nil, fmt.Errorf("exec in %s: the server answered websockets %v", name, fds)
	}
	// The server writes nothing on the control websocket, nor, without a
	// terminal, on the input's: they are read only for their closing.
	x.control.CloseRead(ctx)
	if req.Interactive {
		pty := websocket.NetConn(ctx, in, websocket.MessageBinary)
		go func() { _, _ = io.Copy(pty, s.Stdin) }()
		x.relay(s.Stdout, pty)
		return x, nil
	}
	stdin := websocket.NetConn(in.CloseRead(ctx), in, websocket.MessageBinary)
	go func() {
		if _, err := io.Copy(stdin, s.Stdin); err == nil {
			_ = in.Close(websocket.StatusNormalClosure, "end of input") // the process reads its end
		}
	}()
	x.relay(s.Stdout, websocket.NetConn(ctx, x.conns["1"], websocket.MessageBinary))
	x.relay(s.Stderr, websocket.NetConn(ctx, x.conns["2"], websocket.MessageBinary))
	return x, nil
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

// relay copies an output of the process until the server closes it.
func (x *Exec) relay(w io.Writer, r io.Reader) {
	x.outputs.Add(1)
	go func() {
		defer x.outputs.Done()
		_, _ = io.Copy(w, r)
	}()
}

// Resize sets the size of the process's terminal.
func (x *Exec) Resize(ctx context.Context, width, height int) error {
	return wsjson.Write(ctx, x.control, api.InstanceExecControl{Command: api.ExecWindowResize,
		Args: map[string]string{"width": strconv.Itoa(width), "height": strconv.Itoa(height)}})
}

// Signal sends sig to the process.
func (x *Exec) Signal(ctx context.Context, sig syscall.Signal) error {
	return wsjson.Write(ctx, x.control, api.InstanceExecControl{Command: api.ExecSignal, Signal: int(sig)})
}

// Wait waits for the process to end and its output to be relayed, and
// returns its exit code.
func (x *Exec) Wait(ctx context.Context) (int, error) {
	err := x.op.Wait(ctx)
	if err == nil {
		x.outputs.Wait()
	}
	x.close()
	if err != nil {
		return 0, err
	}
	code, ok := x.op.Metadata["return"].(float64)
	if !ok {
		return 0, fmt.Errorf("exec: the operation ended with no exit code: %v", x.op.Metadata)
	}
	return int(code), nil
}

func (x *Exec) close() {
	for _, c := range x.conns {
		_ = c.CloseNow()
	}
}
