package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
	*session
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
	want := []string{"0", "control"}
	if !req.Interactive {
		want = append(want, "1", "2")
	}
	sess, err := c.connect(ctx, op, "exec in "+name, want...)
	if err != nil {
		return nil, err
	}
	x, in := &Exec{sess}, sess.conns["0"]
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

// Signal sends sig to the process.
func (x *Exec) Signal(ctx context.Context, sig syscall.Signal) error {
	return wsjson.Write(ctx, x.control, api.InstanceExecControl{Command: api.ExecSignal, Signal: int(sig)})
}

// Wait waits for the process to end and its output to be relayed, and
// returns its exit code.
func (x *Exec) Wait(ctx context.Context) (int, error) {
	if err := x.wait(ctx); err != nil {
		return 0, err
	}
	code, ok := x.op.Metadata["return"].(float64)
	if !ok {
		return 0, fmt.Errorf("exec: the operation ended with no exit code: %v", x.op.Metadata)
	}
	return int(code), nil
}
