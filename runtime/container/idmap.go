package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/idmap"
)

// An unprivileged container's root reaches the runtime through an
// idmapped mount of the volume: the volume stays as the image has it on
// disk (root's files owned by 0), and the mount shows them to the
// container's user namespace as its own, with no walk over the tree.
// runc 1.1 makes no idmapped mounts itself.

// RootDir is where, in the run directory, the idmapped root is mounted.
const RootDir = "rootfs"

// withUserNamespace gives the container of s a user namespace with map m,
// unless m is nil.
func withUserNamespace(s *specs.Spec, m *idmap.Map) {
	if m == nil {
		return
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.UID, Size: m.Size}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GID, Size: m.Size}}
}

// errNoIdmap marks a filesystem the kernel cannot idmap.
var errNoIdmap = errors.New("the filesystem cannot be idmapped")

// MountRoot mounts the tree at src on dst (made if need be), idmapped by
// m. A filesystem that cannot be idmapped is an Invalid error that names
// the way out.
func MountRoot(src, dst string, m idmap.Map) error {
	userns, err := usernsFD(m)
	if err != nil {
		return err
	}
	defer unix.Close(userns)
	tree, err := idmappedTree(src, userns)
	if err != nil {
		return err
	}
	return attach(tree, dst)
}

// BindRoot mounts the tree at src on dst (made if need be) as it is: the
// root of an unprivileged container whose volume is shifted on disk, in
// a directory that its root can reach (the pool's directories are closed
// to every user but the host's root).
func BindRoot(src, dst string) error {
	tree, err := cloneTree(src)
	if err != nil {
		return err
	}
	return attach(tree, dst)
}

// cloneTree returns a detached copy of the mount of the tree at src.
func cloneTree(src string) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open the tree of %s: %w", src, err)
	}
	return tree, nil
}

// attach moves the detached mount tree onto dst, and closes it.
func attach(tree int, dst string) error {
	defer unix.Close(tree)
	if err := os.Mkdir(dst, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount the root on %s: %w", dst, err)
	}
	return nil
}

// idmappedTree returns a detached copy of the mount of the tree at src,
// idmapped by the user namespace userns.
func idmappedTree(src string, userns int) (int, error) {
	tree, err := cloneTree(src)
	if err != nil {
		return -1, err
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(tree)
		if noIdmap(err) {
			return -1, fmt.Errorf("%w (%w)", errNoIdmap, err)
		}
		return -1, fmt.Errorf("idmap the mount of %s: %w", src, err)
	}
	return tree, nil
}

// ReleaseRoot unmounts the idmapped root from run directory dir, if it is
// there, and removes its mount point: only then may dir be removed as a
// whole, or the instance's files would go with it.
func ReleaseRoot(dir string) error {
	p := filepath.Join(dir, RootDir)
	for {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount the root of the run in %s: %w", dir, err)
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the root of the run in %s: %w", dir, err)
	}
	return nil
}

// usernsFD returns a file descriptor of a new user namespace with map m:
// that of a child started in it, stopped at its exec (ptrace) and killed
// once the namespace is open. The namespace lives on in the descriptor.
func usernsFD(m idmap.Map) (int, error) {
	runtime.LockOSThread() // the tracer of the child is this thread
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"silo-userns"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.UID), Size: int(m.Size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.GID), Size: int(m.Size)}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("make a user namespace: %w", err)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil {
		return -1, fmt.Errorf("open the user namespace: %w", err)
	}
	return fd, nil
}

// CanIdmap says whether the filesystem of the tree at path can be
// idmapped, found by trying once per filesystem and remembered in
// cacheDir (which a reboot empties: kernels change).
func CanIdmap(path, cacheDir string) (bool, error) {
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Stat(path, &st); err != nil {
		return false, err
	}
	if err := unix.Statfs(path, &fs); err != nil {
		return false, err
	}
	mark := filepath.Join(cacheDir, fmt.Sprintf("%x-%x", fs.Type, st.Dev))
	if b, err := os.ReadFile(mark); err == nil {
		return string(b) == "yes", nil
	}
	userns, err := usernsFD(idmap.Map{UID: idmap.DefaultBase, GID: idmap.DefaultBase, Size: idmap.MinSize})
	if err != nil {
		return false, err
	}
	defer unix.Close(userns)
	tree, err := idmappedTree(path, userns)
	ok := err == nil
	if ok {
		unix.Close(tree)
	} else if !errors.Is(err, errNoIdmap) {
		return false, err
	}
	answer := map[bool]string{true: "yes", false: "no"}[ok]
	if err := os.MkdirAll(cacheDir, 0o700); err == nil {
		_ = os.WriteFile(mark, []byte(answer), 0o600)
	}
	return ok, nil
}

// ownUserns says whether process pid is in a user namespace other than
// the caller's: an unprivileged container's.
func ownUserns(pid int) bool {
	theirs, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/user")
	ours, err2 := os.Readlink("/proc/self/ns/user")
	return err == nil && err2 == nil && theirs != ours
}
