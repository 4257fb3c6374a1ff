package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/silo-dev/silo/errkind"
)

// Exec is a process to run in a running container. It enters the
// container as the runtime's exec would: the cgroups and namespaces of
// its init, with the container's capability bounding set. This costs a
// few milliseconds where the runtime's exec costs some fifty, and it needs
// no terminal on the caller's side to give the process one.
type Exec struct {
	Init int // the container's init, as the host sees it
	Args []string
	Env  []string // the whole environment
	Cwd  string
	TTY  bool
	// UID and GID are the IDs the process runs as, in the container's
	// user namespace: 0, its root.
	UID, GID uint32
	// Sandbox is set for a container in a gVisor sandbox, which is not
	// entered but asked to run the process.
	Sandbox *Sandbox
	// Bundle is the container's bundle directory, whose seccomp profile
	// the process gets, as init has it.
	Bundle string
}

// BaseEnv is the environment init and exec'd processes start from.
func BaseEnv() []string {
	return []string{defaultPath, "container=silo", "TERM=linux", "HOME=/root"}
}

// argv is the command line that runs the process through nsenter, which
// enters namespaces from a single-threaded process, as setns of a mount
// namespace needs and a Go process is not. wd is the fd the working
// directory is open on.
func (x *Exec) argv(wd int) ([]string, error) {
	bin, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, errkind.Wrap(errkind.Unavailable, "nsenter not found: install util-linux")
	}
	argv := []string{bin, "--target", strconv.Itoa(x.Init),
		"--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd=/proc/self/fd/" + strconv.Itoa(wd)}
	if ownUserns(x.Init) {
		// nsenter then becomes root of the container's namespace
		// (setuid and setgid 0 in it), with its capabilities there.
		argv = append(argv, "--user")
	}
	if x.UID != 0 || x.GID != 0 {
		// nsenter drops the supplementary groups with --setgid.
		argv = append(argv, "--setuid", strconv.FormatUint(uint64(x.UID), 10), "--setgid", strconv.FormatUint(uint64(x.GID), 10))
	}
	return append(append(argv, "--"), x.Args...), nil
}

// openCwd opens the working directory in the container's root, resolved
// as the container would (an absolute symlink stays inside), for nsenter
// to enter after its chroot: nsenter opens --wd before it. The default is
// /root, as LXD's, or / where there is none.
func (x *Exec) openCwd(inherit bool) (int, error) {
	root := fmt.Sprintf("/proc/%d/root", x.Init)
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("the container's root: %w", err)
	}
	defer unix.Close(rfd)
	flags := uint64(unix.O_PATH | unix.O_DIRECTORY)
	if !inherit {
		flags |= unix.O_CLOEXEC
	}
	open := func(p string) (int, error) {
		return unix.Openat2(rfd, p, &unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	}
	if x.Cwd != "" {
		fd, err := open(x.Cwd)
		if err != nil {
			return -1, errkind.Wrap(errkind.Invalid, "working directory %q in the instance: %w", x.Cwd, err)
		}
		return fd, nil
	}
	if fd, err := open("root"); err == nil {
		return fd, nil
	}
	return open(".")
}

// Replace runs the process in place of the calling program, which it never
// returns to on success: the process's streams and exit status are the
// caller's. Without a terminal only; see Run.
func (x *Exec) Replace() error {
	if x.Sandbox != nil {
		return x.Sandbox.replace(x)
	}
	wd, err := x.openCwd(true)
	if err != nil {
		return err
	}
	argv, err := x.argv(wd)
	if err != nil {
		return err
	}
	// The bounding set is per thread and passes through execve.
	runtime.LockOSThread()
	if err := x.enter(); err != nil {
		return err
	}
	// The process replaces silo: its end is the caller's to see.
	slog.Debug("exec", "cmd", strings.Join(argv, " "))
	return syscall.Exec(argv[0], argv, x.Env)
}

// Probe runs a short probe of the container, such as readiness, with its
// standard output to out. It enters the namespaces with the container's
// bounding set and seccomp profile, as exec does, so that a binary the
// container replaced runs with no more power than the container's own;
// but it leaves the caller's cgroups alone: the probe is forked from a
// thread of its own, which is thrown away with what it dropped.
func (x *Exec) Probe(ctx context.Context, out io.Writer) error {
	errc := make(chan error, 1)
	go func() {
		if x.Sandbox == nil {
			runtime.LockOSThread() // never unlocked: see above
			if err := x.restrict(); err != nil {
				errc <- err
				return
			}
		}
		cmd, err := x.command(ctx)
		if err != nil {
			errc <- err
			return
		}
		cmd.Stdout = out
		err = cmd.Run()
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
		errc <- err
	}()
	return <-errc
}

// command is the process as a child of the caller, its working directory
// passed as fd 3.
func (x *Exec) command(ctx context.Context) (*exec.Cmd, error) {
	if x.Sandbox != nil {
		return x.Sandbox.command(ctx, x)
	}
	wd, err := x.openCwd(false)
	if err != nil {
		return nil, err
	}
	argv, err := x.argv(3)
	if err != nil {
		unix.Close(wd)
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = x.Env
	cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(wd), "cwd")}
	return cmd, nil
}

// Run runs the process as a child, its streams the caller's: with
// x.TTY, a terminal from the container's own devpts, relayed to the
// caller's, which is made raw, and sized as it is while its window
// changes. It returns the process's exit code.
func (x *Exec) Run() (int, error) {
	in := int(os.Stdin.Fd())
	var width, height int
	raw := x.TTY && term.IsTerminal(in)
	if raw {
		width, height, _ = term.GetSize(in)
	}
	p, err := x.Start(os.Stdin, os.Stdout, os.Stderr, width, height)
	if err != nil {
		return 0, err
	}
	if raw {
		if old, err := term.MakeRaw(in); err == nil {
			defer term.Restore(in, old)
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(in); err == nil {
					_ = p.Resize(w, h)
				}
			}
		}()
	}
	return p.Wait()
}

func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// enter moves the calling process into the cgroups of the container's init
// and, on the calling thread, drops the capabilities the container lacks
// and loads its seccomp profile.
func (x *Exec) enter() error {
	if err := joinCgroups(x.Init); err != nil {
		return fmt.Errorf("join the cgroups of the container: %w", err)
	}
	return x.restrict()
}

// restrict drops, on the calling thread, the capabilities the container
// lacks, and loads the container's seccomp profile.
func (x *Exec) restrict() error {
	profile, err := BundleSeccomp(x.Bundle)
	if err != nil {
		return fmt.Errorf("the container's seccomp profile: %w", err)
	}
	for i, name := range capNames {
		if withheld[name] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("drop %s: %w", name, err)
			}
		}
	}
	if profile == nil {
		return nil
	}
	return loadSeccomp(profile)
}

// joinCgroups moves the calling process into the cgroup of process pid in
// every hierarchy: init's cgroup is a leaf even where cgroup v2 forbids
// processes in inner nodes.
func joinCgroups(pid int) error {
	self := []byte(strconv.Itoa(os.Getpid()))
	return eachCgroup(pid, func(_, dir string) error {
		return os.WriteFile(filepath.Join(dir, "cgroup.procs"), self, 0)
	})
}

// cgroupDirs maps each hierarchy mounted here, named as cgroupMounts names
// it, to the directory of process pid's cgroup in it.
func cgroupDirs(pid int) (map[string]string, error) {
	dirs := map[string]string{}
	err := eachCgroup(pid, func(key, dir string) error {
		dirs[key] = dir
		return nil
	})
	return dirs, err
}

// RemoveCgroup removes the empty cgroup path (absolute) from every
// hierarchy; one that is in use or gone is left as it is.
func RemoveCgroup(path string) {
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, mnt := range mounts {
		_ = os.Remove(filepath.Join(mnt, path))
	}
}

// cgroupMounts maps each mounted cgroup hierarchy, named as in
// /proc/PID/cgroup ("cpu,cpuacct", "name=systemd"; "cgroup2" for v2), to
// its mount point.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			out["cgroup2"] = fields[4]
		case "cgroup":
			var ctrls []string
			for _, opt := range strings.Split(tail[2], ",") {
				if opt != "rw" && opt != "ro" && !strings.HasPrefix(opt, "clone_children") && opt != "noprefix" && !strings.HasPrefix(opt, "release_agent") && opt != "xattr" {
					ctrls = append(ctrls, opt)
				}
			}
			out[strings.Join(ctrls, ",")] = fields[4]
		}
	}
	return out, sc.Err()
}

// ptmx is where the process's terminal is made: in the container's own
// devpts, so that the process sees its own /dev/pts/N; on the host for a
// sandbox, whose devpts the host cannot open.
func (x *Exec) ptmx() (int, error) {
	if x.Sandbox != nil {
		return hostPTMX()
	}
	return containerPTMX(x.Init)
}

// containerPTMX opens the terminal multiplexer of the devpts in the root
// of process pid, which must be a devpts multiplexer (5:2).
func containerPTMX(pid int) (int, error) {
	return openDevpts(pid, "dev/pts/ptmx", "a devpts terminal multiplexer",
		func(rdev uint64) bool { return rdev == unix.Mkdev(5, 2) })
}

// openDevpts opens, read and write, the device at path in the root of
// process pid, which devpts must hold and isDev accept. The root is the
// container's to change: path is resolved inside it and never through a
// symlink, and the device is checked before it is opened, through an
// O_PATH descriptor that opens nothing, or else silo, the host's root,
// would open whatever host file or device the container named. what is
// what the device must be, for the error.
func openDevpts(pid int, path, what string, isDev func(rdev uint64) bool) (int, error) {
	rfd, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	pfd, err := unix.Openat2(rfd, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	wrong := errkind.Wrap(errkind.Invalid, "the container's /%s is not %s", path, what)
	if errors.Is(err, unix.ELOOP) {
		return -1, wrong // a symlink, not followed
	}
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Fstat(pfd, &st); err != nil || unix.Fstatfs(pfd, &fs) != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFCHR || !isDev(st.Rdev) || fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return -1, wrong
	}
	return unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
}

// openPTY opens a terminal pair through open, which opens a terminal
// multiplexer, for a process that becomes root in the user namespace of
// process ns (0: the host's).
func openPTY(open func() (int, error), ns int) (master, slave *os.File, err error) {
	mfd, err := open()
	if err != nil {
		return nil, nil, fmt.Errorf("open the container's terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock the terminal: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open the terminal's peer: %w", errno)
	}
	// The terminal is its opener's, the host's root: in a user namespace,
	// give it to the container's root, whom the process becomes.
	if uid, _ := rootOf(ns); ns != 0 && uid != 0 {
		_ = unix.Fchown(int(sfd), uid, -1)
	}
	// Non-blocking, the master is pollable: closing it ends a read that
	// waits on it.
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(mfd)
		unix.Close(int(sfd))
		return nil, nil, err
	}
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(sfd, "pts"), nil
}
