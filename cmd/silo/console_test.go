package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
)

// The console through a remote, as lxc console: silo console h2:web on a
// terminal attaches over TLS to the shell that busybox's init runs on the
// console, which takes the window's size and follows it; ctrl+a q, or
// SIGTERM, detaches and leaves the instance running; --show-log prints what init
// wrote. Through the API, as any client of LXD's: the websockets by their
// secrets, a client that detaches and one whose instance stops under it;
// a server that shuts down; and the requests refused: an unknown
// secret, a websocket connected twice or after the end, a vga console, a
// size out of range, an unknown instance, a stopped one.
func TestRemoteConsole(t *testing.T) {
	h1, h2 := twoHosts(t)
	h2.ok("config", "set", "core.https_address", h2Addr)
	// A console holds the server's shutdown no longer than this.
	s := h2.serveWith([]string{"--shutdown-timeout", "10s"})
	h2.launch("bb", "web")
	h1.ok("remote", "add", "h2", "https://"+h2Addr, "--token", h2.token("h1"))

	// A person at a terminal on h1.
	term, out, cmd := h1.onTerminal(90, 30, "console", "h2:web")
	typeLine := func(line string) {
		t.Helper()
		if _, err := io.WriteString(term, line+"\r"); err != nil {
			t.Fatal(err)
		}
	}
	waitOutput(t, out, "To detach from the console, press: <ctrl>+a q", nil)
	typeLine("echo con$((6*7))sole")
	waitOutput(t, out, "con42sole\r\n", nil)
	waitOutput(t, out, "30 90\r\n", func() { typeLine("stty size") })
	resize(t, term, 120, 40)
	waitOutput(t, out, "40 120\r\n", func() { typeLine("stty size") })
	if _, err := term.Write([]byte{1, 'q'}); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)
	if st := h2.status("web"); st.State != "running" {
		t.Fatalf("web after a detach: %s", st.State)
	}
	// SIGTERM detaches too.
	_, out, cmd = h1.onTerminal(90, 30, "console", "h2:web")
	waitOutput(t, out, "To detach from the console", nil)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)
	// The log, through the remote as here.
	if log := h1.ok("console", "h2:web", "--show-log"); !strings.Contains(log, "con42sole") || log != h2.ok("console", "web", "--show-log") {
		t.Fatalf("console h2:web --show-log:\n%q", log)
	}
	// Input from a pipe, as here: it detaches at its end.
	if out := h1.runInOK([]byte("echo pi$((3*3))pe\n"), "console", "h2:web"); !strings.Contains(out, "pi9pe") {
		t.Fatalf("console h2:web from a pipe: %q", out)
	}
	// The console on this host follows the window too.
	term, out, cmd = h2.onTerminal(70, 20, "console", "web")
	waitOutput(t, out, "20 70\r\n", func() { typeLine("stty size") })
	if _, err := term.Write([]byte{1, 'q'}); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)

	// Any client of LXD's API, over the unix socket.
	ctx := context.Background()
	hc := client.UnixHTTP(s.socket)
	op := rawOperation(t, hc, "web", "console", `{"type":"console","width":100,"height":25}`)
	fds := op.Metadata["fds"].(map[string]any)
	if len(fds) != 2 || fds["0"] == nil || fds["control"] == nil {
		t.Fatalf("fds of a console: %v", fds)
	}
	if _, code := dialExec(hc, op.ID, strings.Repeat("0", 64)); code != http.StatusForbidden {
		t.Fatalf("a console's websocket with an unknown secret: %d", code)
	}
	con, _ := dialExec(hc, op.ID, fds["0"].(string))
	if con == nil {
		t.Fatal("no console websocket")
	}
	if _, code := dialExec(hc, op.ID, fds["0"].(string)); code != http.StatusConflict {
		t.Fatalf("the console websocket twice: %d", code)
	}
	ctl, _ := dialExec(hc, op.ID, fds["control"].(string))
	if ctl == nil {
		t.Fatal("no control websocket")
	}
	ctl.CloseRead(ctx)
	raw := &lockedBuffer{}
	go func() { _, _ = io.Copy(raw, websocket.NetConn(ctx, con, websocket.MessageBinary)) }()
	typeRaw := func(line string) {
		t.Helper()
		if err := con.Write(ctx, websocket.MessageBinary, []byte(line+"\n")); err != nil {
			t.Fatal(err)
		}
	}
	// The size of the request.
	waitOutput(t, raw, "25 100\r\n", func() { typeRaw("stty size") })
	// A detach: the control websocket closed.
	if err := ctl.Close(websocket.StatusNormalClosure, "detached"); err != nil {
		t.Fatal(err)
	}
	done, err := s.c.WaitOperation(ctx, op.ID, 30*time.Second)
	if err != nil || done.StatusCode != api.Success {
		t.Fatalf("a console detached: %+v, %v", done, err)
	}
	if _, code := dialExec(hc, op.ID, fds["0"].(string)); code != http.StatusGone {
		t.Fatalf("a websocket of a console that is over: %d", code)
	}

	// An instance that stops under its console ends it.
	inR, inW := io.Pipe()
	defer inW.Close()
	seen := &lockedBuffer{}
	x, err := s.c.Console(ctx, "web", api.InstanceConsolePost{}, inR, seen)
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, seen, "ok3\r\n", func() { _, _ = io.WriteString(inW, "echo ok$((1+2))\n") })
	h2.ok("stop", "web", "--force")
	if err := x.Wait(ctx); err != nil {
		t.Fatalf("a console whose instance stopped: %v", err)
	}

	// Refused: a vga console, a size out of range, an instance that is
	// not there or does not run.
	_, err = s.c.Console(ctx, "web", api.InstanceConsolePost{Type: api.ConsoleTypeVGA}, inR, io.Discard)
	failsWith(t, err, http.StatusBadRequest, "type vga")
	_, err = s.c.Console(ctx, "web", api.InstanceConsolePost{Width: 1 << 16, Height: 24}, inR, io.Discard)
	failsWith(t, err, http.StatusBadRequest, "width 65536")
	_, err = s.c.Console(ctx, "nope", api.InstanceConsolePost{}, inR, io.Discard)
	failsWith(t, err, http.StatusNotFound, `"nope"`)
	_, err = s.c.ConsoleLog(ctx, "nope")
	failsWith(t, err, http.StatusNotFound, `"nope"`)
	_, err = s.c.Console(ctx, "web", api.InstanceConsolePost{}, inR, io.Discard)
	failsWith(t, err, http.StatusLocked, `instance "web" is not running`)
	h1.fails(5, `instance "web" is not running (--show-log prints its last console log)`, "console", "h2:web")
	h1.fails(3, "not found", "console", "h2:nope")
	h1.fails(3, "not found", "console", "h2:nope", "--show-log")
	// The log of the last run, as here.
	if log := h1.ok("console", "h2:web", "--show-log"); !strings.Contains(log, "ok3") || log != h2.ok("console", "web", "--show-log") {
		t.Fatalf("console h2:web --show-log of a stopped instance:\n%q", log)
	}

	// A server that shuts down closes the consoles attached to it, and
	// exits well rather than wait for them.
	h2.ok("start", "web")
	seen = &lockedBuffer{}
	if _, err := s.c.Console(ctx, "web", api.InstanceConsolePost{}, inR, seen); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, seen, "ok4\r\n", func() { _, _ = io.WriteString(inW, "echo ok$((2+2))\n") })
	s.stop(t)
}

// waitExit waits for silo on a terminal to exit 0.
func waitExit(t *testing.T, cmd *exec.Cmd, out *lockedBuffer) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("silo %v: %v; output:\n%q", cmd.Args, err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("silo %v still runs after a detach; output:\n%q", cmd.Args, out.String())
	}
}
