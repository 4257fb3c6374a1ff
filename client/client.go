// Package client talks to a silo server's REST API: over its unix socket,
// or over any http.Client (a TLS one for a remote host). Its methods
// return the api package's types; long work returns an Operation to wait
// on.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
)

// Client is a connection to one server.
type Client struct {
	http *http.Client
	base string // scheme and host that paths are appended to
}

// New returns a client of the server at base (https://host:8443) that
// sends its requests through hc, which carries the TLS configuration.
func New(base string, hc *http.Client) *Client {
	return &Client{http: hc, base: base}
}

// NewUnix returns a client of the server listening on the unix socket at
// path.
func NewUnix(path string) *Client {
	return New("http://unix.socket", UnixHTTP(path))
}

// UnixHTTP is an http.Client whose every request goes to the unix socket
// at path, whatever host its URL names: for a program that sends its own
// requests.
func UnixHTTP(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// Error is an error the server answered, with its HTTP status, which
// carries the kind of error (errors.Is(err, errkind.NotFound)...).
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// kinds maps the server's statuses back to the kinds it mapped them from.
var kinds = map[int]error{
	http.StatusBadRequest:            errkind.Invalid,
	http.StatusRequestEntityTooLarge: errkind.Invalid,
	http.StatusNotFound:              errkind.NotFound,
	http.StatusConflict:              errkind.AlreadyExists,
	http.StatusLocked:                errkind.Busy,
	http.StatusPreconditionFailed:    errkind.Busy,
	http.StatusInsufficientStorage:   errkind.NoSpace,
	http.StatusServiceUnavailable:    errkind.Unavailable,
}

// Is makes errors.Is(err, errkind.X) work on the server's errors.
func (e *Error) Is(target error) bool { return kinds[e.Code] == target }

// query encodes parameters; nil for none.
type query = url.Values

// do sends a request with body (JSON, unless nil) and reads the answer
// into the envelope, whose Metadata is decoded into out (if not nil). It
// returns the answer's headers.
func (c *Client) do(ctx context.Context, method, path string, q query, body any, header http.Header, out any) (*api.Response, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(ctx, method, path, q, rd, header)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	env := &api.Response{Metadata: out}
	if err := json.NewDecoder(resp.Body).Decode(env); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %s: unreadable answer: %w", method, path, resp.Status, err)
	}
	return env, resp.Header, nil
}

// send sends a request with a raw body and returns the answer, or the
// error the server answered.
func (c *Client) send(ctx context.Context, method, path string, q query, body io.Reader, header http.Header) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, errkind.Wrap(errkind.Unavailable, "%s %s: %w", method, path, err)
	}
	if err := answerError(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// answerError is the error the server answered in resp, which it closes;
// nil for an answer that is no error.
func answerError(resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	defer resp.Body.Close()
	var env api.Response
	msg := resp.Status
	if json.NewDecoder(resp.Body).Decode(&env) == nil && env.Error != "" {
		msg = env.Error
	}
	return &Error{Code: resp.StatusCode, Message: msg}
}

// dial opens the websocket at path: the server's refusal as its error,
// any other failure as the server being unavailable.
func (c *Client) dial(ctx context.Context, path string, q query) (*websocket.Conn, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		if resp != nil {
			if e := answerError(resp); e != nil {
				return nil, e
			}
		}
		return nil, errkind.Wrap(errkind.Unavailable, "GET %s: %w", path, err)
	}
	return conn, nil
}

// get reads the object at path into out, and returns its ETag.
func (c *Client) get(ctx context.Context, path string, q query, out any) (string, error) {
	_, h, err := c.do(ctx, http.MethodGet, path, q, nil, nil, out)
	if err != nil {
		return "", err
	}
	etag, _ := strconv.Unquote(h.Get("ETag"))
	return etag, nil
}

// recursion asks for the objects of a collection rather than their paths.
func recursion(n int) query { return query{"recursion": {strconv.Itoa(n)}} }

// write sends a request that the server carries out at once.
func (c *Client) write(ctx context.Context, method, path string, body any, header http.Header) error {
	_, _, err := c.do(ctx, method, path, nil, body, header, nil)
	return err
}

// Operation is long work the server carries out.
type Operation struct {
	api.Operation
	c *Client
}

// async sends a request that the server answers with an operation.
func (c *Client) async(ctx context.Context, method, path string, body any, header http.Header) (*Operation, error) {
	op := &Operation{c: c}
	env, _, err := c.do(ctx, method, path, nil, body, header, &op.Operation)
	if err != nil {
		return nil, err
	}
	if env.Type != api.ResponseAsync {
		return nil, fmt.Errorf("%s %s: answered %s, not an operation", method, path, env.Type)
	}
	return op, nil
}

// Wait waits for the operation to end, and returns its error if it failed.
func (o *Operation) Wait(ctx context.Context) error {
	got, err := o.c.WaitOperation(ctx, o.ID, -1)
	if err != nil {
		return err
	}
	o.Operation = *got
	if got.StatusCode == api.Failure {
		return errkind.Decode(got.ErrKind + " " + got.Err)
	}
	return nil
}

// Server describes the server and the host it runs on.
func (c *Client) Server(ctx context.Context) (*api.Server, error) {
	var s api.Server
	_, err := c.get(ctx, api.Version, nil, &s)
	return &s, err
}

// Operation is operation id as it stands.
func (c *Client) Operation(ctx context.Context, id string) (*api.Operation, error) {
	var op api.Operation
	_, err := c.get(ctx, api.Path("operations", id), nil, &op)
	return &op, err
}

// Operations lists the server's operations by status (running, success,
// failure).
func (c *Client) Operations(ctx context.Context) (map[string][]*api.Operation, error) {
	out := map[string][]*api.Operation{}
	_, err := c.get(ctx, api.Version+"/operations", recursion(1), &out)
	return out, err
}

// WaitOperation waits up to timeout (no limit if negative) for operation
// id to end, and returns it as it then stands.
func (c *Client) WaitOperation(ctx context.Context, id string, timeout time.Duration) (*api.Operation, error) {
	q := query{}
	if timeout >= 0 {
		q.Set("timeout", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	}
	var op api.Operation
	_, err := c.get(ctx, api.Path("operations", id)+"/wait", q, &op)
	return &op, err
}
