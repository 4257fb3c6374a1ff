package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/runcmd"
)

// Sandbox is a running container whose processes live in a gVisor
// sandbox, on gVisor's kernel: no namespace on the host holds them, so
// nsenter cannot reach them, and a process is run in it by the runtime's
// exec.
type Sandbox struct {
	OCI  *OCI
	ID   string
	Root string // its root filesystem, as the host sees it
}

// Sandbox returns the sandbox of container id, whose bundle is the
// directory bundle, or nil when the runtime runs containers on the host's
// kernel.
func (r *OCI) Sandbox(id, bundle string) (*Sandbox, error) {
	if !sandboxed(r.Binary) {
		return nil, nil
	}
	s, err := readBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("the bundle of %s: %w", id, err)
	}
	if s.Root == nil {
		return nil, fmt.Errorf("the bundle of %s: no root in %s", id, BundleConfig)
	}
	return &Sandbox{OCI: r, ID: id, Root: s.Root.Path}, nil
}

// createSandbox is Create for a sandbox, whose init is given no terminal
// of its own. gVisor makes a console the controlling terminal of init but
// answers TIOCGPGRP on it to every session, where Linux answers only the
// terminal's own: a shell that init starts on the console in a new session
// (busybox's) takes itself for a background job and stops. So init's
// streams are a terminal made here, which gVisor passes on as a plain
// file, and its master is handed over consoleSocket as the runtime would.
// hostPTMX opens the host's terminal multiplexer.
func hostPTMX() (int, error) {
	return unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
}

func (r *OCI) createSandbox(ctx context.Context, id, bundle, consoleSocket, pidFile string) error {
	master, slave, err := openPTY(hostPTMX, 0)
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	// What runsc writes on stderr goes to init's console: its own
	// messages are read back from a log of their own.
	logPath := filepath.Join(bundle, "runsc-create.log")
	args := append(r.global(), "--log", logPath, "create", "--bundle", bundle, "--pid-file", pidFile, id)
	cmd := exec.CommandContext(ctx, r.Binary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	done := runcmd.Trace(cmd)
	err = cmd.Run()
	done(err)
	if err != nil {
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s create: %s", filepath.Base(r.Binary), runtimeMessage(log, err))
	}
	return sendFD(consoleSocket, master)
}

// sendFD sends f over the unix socket at path (SCM_RIGHTS), as a runtime
// sends a console.
func sendFD(path string, f *os.File) error {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("hand the console over: %w", err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte("console"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		return fmt.Errorf("hand the console over: %w", err)
	}
	// Until the receiver has it and hangs up: it stops listening once
	// Create returns.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, conn)
	return nil
}

// argv is the runtime's exec of x, which reads the process from fd, and
// the file that holds it.
func (s *Sandbox) argv(x *Exec, fd int) []string {
	argv := append([]string{s.OCI.Binary}, s.OCI.global()...)
	return append(argv, "exec", "--process", "/proc/self/fd/"+strconv.Itoa(fd), s.ID)
}

// process writes the process of x, as the runtime's --process takes it,
// to a file in memory. Its capabilities are left to the runtime: those of
// the container's init.
func (s *Sandbox) process(x *Exec) (*os.File, error) {
	p := specs.Process{Terminal: x.TTY, Args: x.Args, Env: x.Env, Cwd: s.cwd(x.Cwd), User: specs.User{UID: x.UID, GID: x.GID}}
	data, err := json.Marshal(&p)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("process.json", 0)
	if err != nil {
		return nil, fmt.Errorf("the process to run: %w", err)
	}
	f := os.NewFile(uintptr(fd), "process.json")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("the process to run: %w", err)
	}
	return f, nil
}

// cwd is the working directory of a process: cwd when given (the runtime
// says if there is none), else /root as LXD's, or / where there is none.
func (s *Sandbox) cwd(cwd string) string {
	if cwd != "" {
		return cwd
	}
	rfd, err := unix.Open(s.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "/"
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, "root", &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "/"
	}
	unix.Close(fd)
	return "/root"
}

// replace runs x in the sandbox in place of the calling program: the
// runtime's exec exits with the process's status.
func (s *Sandbox) replace(x *Exec) error {
	f, err := s.process(x)
	if err != nil {
		return err
	}
	argv := s.argv(x, int(f.Fd()))
	slog.Debug("exec", "cmd", strings.Join(argv, " "))
	err = syscall.Exec(argv[0], argv, os.Environ())
	runtime.KeepAlive(f) // open until the runtime has it
	return err
}

// command is x run in the sandbox as a child of the caller, its process
// passed as fd 3.
func (s *Sandbox) command(ctx context.Context, x *Exec) (*exec.Cmd, error) {
	f, err := s.process(x)
	if err != nil {
		return nil, err
	}
	argv := s.argv(x, 3)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{f}
	return cmd, nil
}

// updateSandbox is Update for a sandbox, whose runtime has no update: the
// limits are written to its cgroups on the host, which hold gVisor's
// kernel and all it runs. What the instance sees of them (nproc,
// /proc/meminfo) stays as it was at boot.
func updateSandbox(pid int, l Limits, allCPUs string) error {
	if l.Processes > 0 {
		return errProcesses
	}
	dirs, err := cgroupDirs(pid)
	if err != nil {
		return fmt.Errorf("the cgroups of the sandbox: %w", err)
	}
	cpus := l.CPUs
	if cpus == "" {
		cpus = allCPUs
	}
	mem1, mem2 := "-1", "max"
	if l.Memory > 0 {
		mem1 = strconv.FormatInt(l.Memory, 10)
		mem2 = mem1
	}
	if err := writeCgroup(dirs, "memory", "memory.limit_in_bytes", mem1, "memory.max", mem2); err != nil {
		return err
	}
	return writeCgroup(dirs, "cpuset", "cpuset.cpus", cpus, "cpuset.cpus", cpus)
}

// writeCgroup writes a value to cgroup v1's controller, in its file v1, or
// where that controller is on cgroup v2, to file v2.
func writeCgroup(dirs map[string]string, controller, v1, val1, v2, val2 string) error {
	p, val := filepath.Join(dirs[controller], v1), val1
	if dirs[controller] == "" {
		p, val = filepath.Join(dirs["cgroup2"], v2), val2
	}
	if err := os.WriteFile(p, []byte(val), 0); err != nil {
		return fmt.Errorf("%s limit of the sandbox: %w", controller, err)
	}
	return nil
}
