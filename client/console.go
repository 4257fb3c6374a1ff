package client

import (
	"context"
	"io"
	"net/http"

	"github.com/coder/websocket"

	"github.com/silo-dev/silo/api"
)

// Console is a client attached to the console of an instance.
type Console struct {
	*session
}

// Console attaches to the console of a running instance, as lxc console
// does: what init writes there goes to out, and what in holds to init,
// until in ends, which detaches. The console also ends when the instance
// stops; Wait waits for either. Canceling ctx cuts it.
func (c *Client) Console(ctx context.Context, name string, req api.InstanceConsolePost, in io.Reader, out io.Writer) (*Console, error) {
	if req.Type == "" {
		req.Type = api.ConsoleTypeConsole
	}
	op, err := c.async(ctx, http.MethodPost, api.Path("instances", name)+"/console", req, nil)
	if err != nil {
		return nil, err
	}
	sess, err := c.connect(ctx, op, "console of "+name, "0", "control")
	if err != nil {
		return nil, err
	}
	x := &Console{sess}
	term := websocket.NetConn(ctx, sess.conns["0"], websocket.MessageBinary)
	go func() {
		_, _ = io.Copy(term, in)
		// As LXD's clients detach: the server then closes the console.
		_ = x.control.Close(websocket.StatusNormalClosure, "detached")
	}()
	x.relay(out, term)
	return x, nil
}

// Wait waits until the console has ended and what init wrote is relayed.
func (x *Console) Wait(ctx context.Context) error {
	return x.wait(ctx)
}

// ConsoleLog streams what init has written to the console of instance
// name, in its current run or its last one; close what it returns.
func (c *Client) ConsoleLog(ctx context.Context, name string) (io.ReadCloser, error) {
	return c.download(ctx, api.Path("instances", name)+"/console", nil)
}
