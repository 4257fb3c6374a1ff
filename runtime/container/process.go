package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/runcmd"
)

// envExecChild makes silo the child of Start: it holds the process to
// run, as JSON.
const envExecChild = "SILO_EXEC_CHILD"

// outputGrace is how long the output of a process that ended may stay
// open, held by what it left running, before it is cut.
const outputGrace = 2 * time.Second

// childExec is what the child of Start is told of its Exec.
type childExec struct {
	Init     int
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	Bundle   string
}

// Process is an Exec started as a child of the caller, its streams relayed
// to the caller's readers and writers.
type Process struct {
	cmd     *exec.Cmd
	sandbox bool
	pty     *os.File   // the terminal's master, for a process with one
	mine    []*os.File // the caller's ends of the streams, closed at the end
	copied  sync.WaitGroup
	trace   func(error)
}

// Start starts the process as a child of the caller, which may be a
// server that must keep its own cgroups and capabilities: the child is
// silo again, which joins the container's cgroups and becomes the process
// as a command's exec does (Replace). The process reads stdin and writes
// stdout and stderr; with a terminal, both go to stdout, and width and
// height (when not 0) size it.
func (x *Exec) Start(stdin io.Reader, stdout, stderr io.Writer, width, height int) (*Process, error) {
	cmd, err := x.child()
	if err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, sandbox: x.Sandbox != nil}
	var theirs []*os.File // the child's ends, closed once it has them
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
	}()
	var in *os.File // where stdin is written
	outs := map[*os.File]io.Writer{}
	if x.TTY {
		master, slave, err := openPTY(x.ptmx, x.Init)
		if err != nil {
			return nil, err
		}
		p.pty, in, theirs, p.mine = master, master, []*os.File{slave}, []*os.File{master}
		outs[master] = stdout
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if width > 0 && height > 0 {
			_ = p.Resize(width, height)
		}
	} else {
		var fds [3][2]*os.File
		for i := range fds {
			r, w, err := os.Pipe()
			if err != nil {
				for _, f := range fds[:i] {
					p.closeAll(f[:])
				}
				return nil, err
			}
			fds[i] = [2]*os.File{r, w}
		}
		in, theirs, p.mine = fds[0][1], []*os.File{fds[0][0], fds[1][1], fds[2][1]}, []*os.File{fds[0][1], fds[1][0], fds[2][0]}
		outs[fds[1][0]], outs[fds[2][0]] = stdout, stderr
		cmd.Stdin, cmd.Stdout, cmd.Stderr = fds[0][0], fds[1][1], fds[2][1]
	}
	p.trace = runcmd.Trace(cmd)
	if err := cmd.Start(); err != nil {
		p.closeAll(p.mine)
		return nil, fmt.Errorf("start the process: %w", err)
	}
	go func() {
		_, _ = io.Copy(in, stdin)
		if !x.TTY {
			in.Close() // the end of the input, as the process reads it
		}
	}()
	for r, w := range outs {
		p.copied.Add(1)
		go func() {
			defer p.copied.Done()
			if _, err := io.Copy(w, r); err != nil {
				_, _ = io.Copy(io.Discard, r) // the reader went: the process must not block
			}
		}()
	}
	return p, nil
}

// child is the command that becomes the process.
func (x *Exec) child() (*exec.Cmd, error) {
	if x.Sandbox != nil {
		return x.Sandbox.command(context.Background(), x)
	}
	// The working directory is checked here, for its error to be the
	// caller's rather than the child's.
	wd, err := x.openCwd(false)
	if err != nil {
		return nil, err
	}
	unix.Close(wd)
	spec, err := json.Marshal(childExec{Init: x.Init, Args: x.Args, Env: x.Env, Cwd: x.Cwd, UID: x.UID, GID: x.GID, Bundle: x.Bundle})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"silo-exec"}
	cmd.Env = []string{envExecChild + "=" + string(spec), "PATH=" + os.Getenv("PATH")} // PATH finds nsenter
	return cmd, nil
}

// ExecChildMain is the child of Start, when the environment says so: it
// returns whether it ran, and its exit code when it could not become the
// process.
func ExecChildMain() (ran bool, code int) {
	spec, ok := os.LookupEnv(envExecChild)
	if !ok {
		return false, 0
	}
	var c childExec
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintf(os.Stderr, "silo: exec: %v\n", err)
		return true, 1
	}
	x := &Exec{Init: c.Init, Args: c.Args, Env: c.Env, Cwd: c.Cwd, UID: c.UID, GID: c.GID, Bundle: c.Bundle}
	err := x.Replace()
	fmt.Fprintf(os.Stderr, "silo: exec: %v\n", err)
	return true, 126
}

// Resize sets the size of the process's terminal; without one, it does
// nothing.
func (p *Process) Resize(width, height int) error {
	if p.pty == nil {
		return nil
	}
	rc, err := p.pty.SyscallConn() // Fd would make the master blocking
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(width), Row: uint16(height)}
	if cerr := rc.Control(func(fd uintptr) { err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); cerr != nil {
		return cerr
	}
	return err
}

// Signal sends sig to the process. Its child is nsenter, which forks the
// command into the container's PID namespace and does not pass signals
// on: the signal goes to nsenter's child. A sandbox's runtime passes
// signals on itself.
func (p *Process) Signal(sig syscall.Signal) error {
	pid := p.cmd.Process.Pid
	if !p.sandbox {
		// nsenter's child is a zombie, not another process, until
		// nsenter has reaped it and ended.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				pid, _ = strconv.Atoi(f[0])
			}
		}
	}
	return unix.Kill(pid, sig)
}

// Wait waits for the process to end, then for its output up to
// outputGrace, and returns its exit code: 128+N for signal N.
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
	p.trace(err)
	copied := make(chan struct{})
	go func() { p.copied.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(outputGrace):
	}
	p.closeAll(p.mine) // ends the relays, and the input's
	p.copied.Wait()
	return exitCode(err)
}

func (p *Process) closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
