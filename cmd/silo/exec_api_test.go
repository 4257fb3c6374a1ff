package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
)

// lockedBuffer is a buffer that the relays write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitOutput waits until out holds want, doing again every 200 ms (nil: nothing).
func waitOutput(t *testing.T, out *lockedBuffer, want string, again func()) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), want); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%q", want, out.String())
		}
		if again != nil {
			again()
		}
	}
}

// rawOperation starts a websocket operation of an instance (exec,
// console) with a request of its own, as any client of LXD's API would,
// and returns the operation.
func rawOperation(t *testing.T, hc *http.Client, name, what, body string) *api.Operation {
	t.Helper()
	resp, err := hc.Post("http://unix.socket/1.0/instances/"+name+"/"+what, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	op := &api.Operation{}
	env := api.Response{Metadata: op}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != http.StatusAccepted || op.Class != api.ClassWebsocket {
		t.Fatalf("POST %s: %d %+v %v", what, resp.StatusCode, env, err)
	}
	return op
}

// dialExec connects a websocket of an exec, and returns the status of a
// refusal.
func dialExec(hc *http.Client, id, secret string) (*websocket.Conn, int) {
	c, resp, err := websocket.Dial(context.Background(), "http://unix.socket/1.0/operations/"+id+"/websocket?secret="+secret,
		&websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		return nil, -1
	}
	return c, http.StatusSwitchingProtocols
}

// Exec through the API, as lxc exec drives LXD's: a shell on a terminal
// that echoes what is typed, follows a resize and exits with its code; a
// command without one, with its three streams apart; signals; a client
// that goes away; and the requests refused: a bad secret, a socket
// connected twice, a bad command, a stopped instance.
func TestServeExec(t *testing.T) {
	e := bootEnv(t, "dir")
	s := e.serve()
	e.launch("bb", "web")
	c, ctx := s.c, context.Background()

	// A shell on a terminal.
	inR, inW := io.Pipe()
	out := &lockedBuffer{}
	x, err := c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"sh"}, Interactive: true, Width: 80, Height: 24,
		Environment: map[string]string{"TERM": "xterm", "GREETING": "hel"}}, client.ExecStreams{Stdin: inR, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	type_ := func(line string) {
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	type_("echo ${GREETING}lo")
	waitOutput(t, out, "hello\r\n", nil)
	type_("stty size; tty")
	waitOutput(t, out, "24 80\r\n/dev/pts/", nil)
	if err := x.Resize(ctx, 100, 30); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "30 100\r\n", func() { type_("stty size") })
	type_("exit 3")
	if code, err := x.Wait(ctx); err != nil || code != 3 {
		t.Fatalf("exit 3 on a terminal: %d, %v; output:\n%q", code, err, out.String())
	}

	// silo exec on a terminal here, as through a remote.
	e.shellOnTerminal("web")

	// Without a terminal: stdin, stdout and stderr apart.
	var stdout, stderr bytes.Buffer
	x, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"sh", "-c", "tr a-z A-Z; echo oops >&2; exit 5"}},
		client.ExecStreams{Stdin: strings.NewReader("one\ntwo\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(ctx); err != nil || code != 5 || stdout.String() != "ONE\nTWO\n" || stderr.String() != "oops\n" {
		t.Fatalf("exec with pipes: %d, %v, stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
	}
	// As another user, in another directory.
	stdout.Reset()
	x, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"sh", "-c", "id -u; id -g; pwd"}, User: 1000, Group: 1001, Cwd: "/tmp"},
		client.ExecStreams{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(ctx); err != nil || code != 0 || stdout.String() != "1000\n1001\n/tmp\n" {
		t.Fatalf("exec as 1000:1001 in /tmp: %d, %v, %q", code, err, stdout.String())
	}
	x, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"true"}, Cwd: "/nowhere"}, client.ExecStreams{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Wait(ctx); err == nil || !strings.Contains(err.Error(), `working directory "/nowhere"`) {
		t.Fatalf("exec in a directory that is not there: %v", err)
	}

	// A signal ends the command: 128+15.
	sig := &lockedBuffer{}
	x, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"sh", "-c", "echo ready; exec sleep 1000"}},
		client.ExecStreams{Stdin: strings.NewReader(""), Stdout: sig, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, sig, "ready\n", nil)
	// It runs in the instance's cgroups, not the server's.
	if pid := hostPid(t, "sleep 1000"); cgroupOf(t, pid) != cgroupOf(t, e.status("web").Pid) {
		t.Fatalf("the exec'd process is in cgroups\n%s\nnot the instance's\n%s", cgroupOf(t, pid), cgroupOf(t, e.status("web").Pid))
	}
	if err := x.Signal(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := x.Wait(ctx); err != nil || code != 128+15 {
		t.Fatalf("SIGTERM: %d, %v", code, err)
	}

	// A client that goes away: its process is killed and reaped.
	for _, tty := range []bool{false, true} {
		gone := &lockedBuffer{}
		cctx, cancel := context.WithCancel(ctx)
		_, err = c.Exec(cctx, "web", api.InstanceExecPost{Command: []string{"sh", "-c", "echo ready; exec sleep 777"}, Interactive: tty},
			client.ExecStreams{Stdin: strings.NewReader(""), Stdout: gone, Stderr: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		waitOutput(t, gone, "ready", nil)
		cancel()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if out := e.sh("web", "ps"); !strings.Contains(out, "sleep 777") {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("the process of a client that went away (terminal %v) still runs:\n%s", tty, out)
			}
		}
	}
	waitNoZombies(t, s)

	// Any client of LXD's API: a bad secret is refused, a websocket is
	// connected once, and the process starts once all are.
	hc := client.UnixHTTP(s.socket)
	op := rawOperation(t, hc, "web", "exec", `{"command":["sh","-c","cat; exit 7"],"wait-for-websocket":true}`)
	fds := op.Metadata["fds"].(map[string]any)
	if len(fds) != 4 {
		t.Fatalf("fds without a terminal: %v", fds)
	}
	if _, code := dialExec(hc, op.ID, strings.Repeat("0", 64)); code != http.StatusForbidden {
		t.Fatalf("a bad secret: %d", code)
	}
	var conns []*websocket.Conn
	for _, fd := range []string{"0", "1", "2"} {
		conn, code := dialExec(hc, op.ID, fds[fd].(string))
		if conn == nil {
			t.Fatalf("websocket %s: %d", fd, code)
		}
		conns = append(conns, conn)
		if _, code := dialExec(hc, op.ID, fds[fd].(string)); code != http.StatusConflict {
			t.Fatalf("websocket %s twice: %d", fd, code)
		}
	}
	if now, err := c.Operation(ctx, op.ID); err != nil || now.StatusCode != api.Running {
		t.Fatalf("the exec before its control websocket: %+v, %v", now, err)
	}
	ctl, _ := dialExec(hc, op.ID, fds["control"].(string))
	if ctl == nil {
		t.Fatal("no control websocket")
	}
	// The input, ended by the barrier (an empty text message) that LXD's
	// clients send; the output, ended by a normal close.
	if err := conns[0].Write(ctx, websocket.MessageBinary, []byte("raw\n")); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].Write(ctx, websocket.MessageText, nil); err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*websocket.Conn{conns[0], conns[2], ctl} {
		conn.CloseRead(ctx)
	}
	got, err := io.ReadAll(websocket.NetConn(ctx, conns[1], websocket.MessageBinary))
	if err != nil || string(got) != "raw\n" {
		t.Fatalf("stdout through raw websockets: %q, %v", got, err)
	}
	done, err := c.WaitOperation(ctx, op.ID, 30*time.Second)
	if err != nil || done.StatusCode != api.Success || done.Metadata["return"] != float64(7) {
		t.Fatalf("exit 7 through raw websockets: %+v, %v", done, err)
	}
	if op := rawOperation(t, hc, "web", "exec", `{"command":["true"],"interactive":true,"wait-for-websocket":true}`); len(op.Metadata["fds"].(map[string]any)) != 2 {
		t.Fatalf("fds with a terminal: %v", op.Metadata)
	} else {
		for _, fd := range []string{"0", "control"} {
			if conn, code := dialExec(hc, op.ID, op.Metadata["fds"].(map[string]any)[fd].(string)); conn == nil {
				t.Fatalf("websocket %s: %d", fd, code)
			} else {
				conn.CloseRead(ctx)
			}
		}
		if done, err := c.WaitOperation(ctx, op.ID, 30*time.Second); err != nil || done.Metadata["return"] != float64(0) {
			t.Fatalf("true on a terminal through raw websockets: %+v, %v", done, err)
		}
	}

	// Bad requests, and a stopped instance.
	none := client.ExecStreams{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	_, err = c.Exec(ctx, "web", api.InstanceExecPost{}, none)
	failsWith(t, err, http.StatusBadRequest, "give the program to run")
	_, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"true"}, RecordOutput: true}, none)
	failsWith(t, err, http.StatusBadRequest, "record-output is not served")
	_, err = c.Exec(ctx, "nope", api.InstanceExecPost{Command: []string{"true"}}, none)
	failsWith(t, err, http.StatusNotFound, `"nope"`)
	e.ok("stop", "web", "--force")
	_, err = c.Exec(ctx, "web", api.InstanceExecPost{Command: []string{"true"}}, none)
	failsWith(t, err, http.StatusLocked, `instance "web" is not running`)
	if _, err := os.Stat(filepath.Join(e.state, "unix.socket")); err != nil {
		t.Fatal(err)
	}
}

// waitNoZombies waits until the server has reaped its children.
func waitNoZombies(t *testing.T, s *apiServer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.zombies()) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server leaves zombies: %v", s.zombies())
		}
	}
}

// hostPid is the host's PID of the one process whose command line is cmdline.
func hostPid(t *testing.T, cmdline string) int {
	t.Helper()
	var found []int
	stats, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")) == cmdline {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("processes %q: %v", cmdline, found)
	}
	return found[0]
}

func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onTerminal runs silo with a terminal of width by height as its
// streams and controlling terminal, as a person would, and returns the
// terminal's master and what silo writes on it.
func (e *env) onTerminal(width, height int, args ...string) (*os.File, *lockedBuffer, *exec.Cmd) {
	e.t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	master := os.NewFile(uintptr(mfd), "ptmx")
	e.t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		e.t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		e.t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer slave.Close()
	resize(e.t, master, width, height)
	argv := e.silo(args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "SILO_STATE_DIR="+e.state, "TERM=xterm"), e.extra...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil { // a test that failed before silo ended
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	out := &lockedBuffer{}
	go func() { _, _ = io.Copy(out, master) }()
	return master, out, cmd
}

// resize sets the size of the terminal whose master is m: its
// foreground process gets SIGWINCH.
func resize(t *testing.T, m *os.File, width, height int) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)}); err != nil {
		t.Fatal(err)
	}
}

// shellOnTerminal runs silo exec NAME -- sh on a terminal, as a person
// would: the shell gets a terminal of the same size, which follows the
// window's, and silo exits with the shell's code.
func (e *env) shellOnTerminal(name string) {
	e.t.Helper()
	term, out, cmd := e.onTerminal(90, 30, "exec", name, "--", "sh")
	typeLine := func(line string) {
		if _, err := io.WriteString(term, line+"\r"); err != nil {
			e.t.Fatal(err)
		}
	}
	typeLine("stty size; echo $TERM")
	waitOutput(e.t, out, "30 90\r\nxterm\r\n", nil)
	resize(e.t, term, 120, 40)
	waitOutput(e.t, out, "40 120\r\n", func() { typeLine("stty size") })
	typeLine("exit 6")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 6 {
		e.t.Fatalf("silo exec %s -- sh on a terminal, exit 6: %v; output:\n%q", name, err, out.String())
	}
}
