// Command escape tries one way out of a container, from inside it, and
// says whether it got out. The escape tests of cmd/silo build it static,
// push it into an instance and run it there with silo exec.
//
//	escape handle TYPE HEX      open_by_handle_at with a handle made on the host
//	escape mknod MAJOR MINOR    make a block device node, open and read it
//	escape devtmpfs NAME        read block device NAME through a devtmpfs mount
//	escape remount              remount the root's superblock read-only, freeze it
//	escape write PATH VALUE     write VALUE to PATH
//	escape read PATH            read PATH
//	escape module               load and unload a kernel module
//	escape ptrace PID MARKER    trace PID and find MARKER in its command line
//
// It exits 0 when every attempt was refused, 10 when one got through, and
// prints a line for each attempt.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

var escaped bool

// report prints the outcome of one attempt: err nil means it got through.
func report(what string, err error) {
	if err == nil {
		escaped = true
		fmt.Printf("ESCAPED: %s\n", what)
		return
	}
	fmt.Printf("refused: %s: %v\n", what, err)
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: escape CASE ARGS...")
		os.Exit(2)
	}
	cases := map[string]func([]string){
		"handle": handle, "mknod": mknod, "devtmpfs": devtmpfs, "remount": remount,
		"write": write, "read": read, "module": module, "ptrace": ptrace,
	}
	run, ok := cases[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown case %q\n", args[0])
		os.Exit(2)
	}
	run(args[1:])
	if escaped {
		os.Exit(10)
	}
}

func num(s string) int {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return int(n)
}

// handle opens a file handle against the root's filesystem and, if that
// works, lists what it opened.
func handle(args []string) {
	raw, err := hex.DecodeString(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mountFD, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fd, err := unix.OpenByHandleAt(mountFD, unix.NewFileHandle(int32(num(args[0])), raw), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		report("open_by_handle_at", err)
		return
	}
	names, _ := os.NewFile(uintptr(fd), "handle").Readdirnames(-1)
	report(fmt.Sprintf("open_by_handle_at opened a directory holding %v", names), nil)
}

// tryRead reads the start of the file or device at p: anything read is
// an escape.
func tryRead(p string) {
	f, err := os.Open(p)
	if err != nil {
		report("open "+p, err)
		return
	}
	defer f.Close()
	n, err := f.Read(make([]byte, 4096))
	if err == nil && n == 0 {
		err = fmt.Errorf("read nothing")
	}
	if err != nil {
		report("read "+p, err)
		return
	}
	report(fmt.Sprintf("read %d bytes of %s", n, p), nil)
}

func mknod(args []string) {
	p := "/tmp/escape-disk"
	os.Remove(p)
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(uint32(num(args[0])), uint32(num(args[1]))))); err != nil {
		report("mknod "+p, err)
		return
	}
	// A node made names a device of the kernel the caller runs on. Where
	// that kernel has none by the number (gVisor's, which has no block
	// devices and lets root make any node on its tmpfs), it opens nothing.
	f, err := os.Open(p)
	if errors.Is(err, unix.ENXIO) {
		report("mknod "+p+" made a node of no device", err)
		return
	}
	if err == nil {
		f.Close()
	}
	report("mknod "+p, nil)
	tryRead(p)
}

func devtmpfs(args []string) {
	dir := "/tmp/escape-devtmpfs"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := unix.Mount("devtmpfs", dir, "devtmpfs", 0, ""); err != nil {
		report("mount devtmpfs", err)
		return
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	tryRead(dir + "/" + args[0])
}

func remount([]string) {
	report("remount / read-only", unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	fd, err := unix.Fspick(unix.AT_FDCWD, "/", unix.FSPICK_CLOEXEC)
	if err == nil {
		if err = unix.FsconfigSetFlag(fd, "ro"); err == nil {
			err = unix.FsconfigReconfigure(fd)
		}
		unix.Close(fd)
	}
	report("fspick and reconfigure / read-only", err)
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer unix.Close(root)
	const fiFreeze, fiThaw = 0xc0045877, 0xc0045878
	err = unix.IoctlSetInt(root, fiFreeze, 0)
	if err == nil {
		_ = unix.IoctlSetInt(root, fiThaw, 0)
	}
	report("freeze /", err)
}

func write(args []string) {
	f, err := os.OpenFile(args[0], os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(args[1])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	report("write "+args[0], err)
}

func read(args []string) { tryRead(args[0]) }

// module tries to load and unload modules: only EPERM or ENOSYS mean the
// kernel did not look at the request (a bad image gets ENOEXEC, an absent
// module ENOENT, once the caller may).
func module([]string) {
	refused := func(err error) error {
		if err == unix.EPERM || err == unix.ENOSYS {
			return err
		}
		return nil
	}
	image := []byte("\x7fELF not a module")
	_, _, e := unix.Syscall(unix.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&image[0])), uintptr(len(image)), uintptr(unsafe.Pointer(&[]byte("\x00")[0])))
	report("init_module", refused(e))
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	report("finit_module", refused(unix.FinitModule(int(f.Fd()), "", 0)))
	report("delete_module", refused(unix.DeleteModule("silo_escape_none", unix.O_NONBLOCK)))
}

// ptrace attaches to PID: a process of the host is out of reach when the
// PID names none in the container, or one that is not the host's.
func ptrace(args []string) {
	runtime.LockOSThread() // the tracer is this thread
	pid := num(args[0])
	err := unix.PtraceSeize(pid)
	if err != nil {
		report(fmt.Sprintf("ptrace %d", pid), err)
		return
	}
	defer unix.PtraceDetach(pid)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), args[1]) {
		report(fmt.Sprintf("ptrace %d", pid), fmt.Errorf("that PID is the container's own %q", cmdline))
		return
	}
	report(fmt.Sprintf("ptrace %d, the host's %q", pid, cmdline), nil)
}
