package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
)

// A disk reaches a container, created or running, as a detached copy of
// the mount of its source made in the host's mount namespace (nosuid and
// nodev, idmapped by the container's own user namespace when asked,
// read-only if asked), moved onto
// its path from a thread that has entered the container's mount
// namespace. The path is resolved in the container's root, never out of
// it, and the source stays as it is on disk.

// Disk is a directory of the host's to mount in a container.
type Disk struct {
	Source   string // on the host
	Path     string // in the container, absolute
	ReadOnly bool
	// Shift shows the files to a container with a user namespace of its
	// own with its IDs, as they are on disk: its root is the host's root
	// on the disk's files.
	Shift bool
}

// MountDisk mounts disk d in the container whose init is pid, making its
// path inside if it is missing. With Shift, the mount is idmapped by the
// container's user namespace when it has one of its own.
func MountDisk(pid int, d Disk) error {
	tree, err := cloneTree(d.Source)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if d.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	owner := [2]int{0, 0}
	unprivileged := ownUserns(pid)
	if unprivileged {
		if owner, err = rootOwner(pid); err != nil {
			return err
		}
	}
	if unprivileged && d.Shift {
		userns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the user namespace of %d: %w", pid, err)
		}
		defer unix.Close(userns)
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns)
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		if attr.Attr_set&unix.MOUNT_ATTR_IDMAP != 0 && noIdmap(err) {
			return errkind.Wrap(errkind.Invalid, "%s: %v (%v): its files cannot be shown to an unprivileged instance with its own IDs", d.Source, errNoIdmap, err)
		}
		return fmt.Errorf("set the mount of %s: %w", d.Source, err)
	}
	if unprivileged {
		locked, err := lockedFlags(tree, owner)
		if err != nil {
			return err
		}
		defer unix.Close(locked)
		tree = locked
	}
	return inMountNS(pid, func(root int) error {
		// Directories made inside belong to the container's root: its
		// own root filesystem may be idmapped, which maps no file of
		// the host's root.
		unix.Setfsgid(owner[1])
		unix.Setfsuid(owner[0])
		target, err := makePath(root, d.Path)
		if err != nil {
			return err
		}
		defer unix.Close(target)
		if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount %s on %s: %w", d.Source, d.Path, err)
		}
		return nil
	})
}

// UnmountDisk takes disk d out of the container whose init is pid: each
// mount of its source stacked on its path, if any. A disk whose source
// is gone from the host (Source empty) has the one mount on its path
// taken out, if there is one.
func UnmountDisk(pid int, d Disk) error {
	var src unix.Stat_t
	if d.Source != "" {
		if err := unix.Stat(d.Source, &src); err != nil {
			return fmt.Errorf("disk source %s: %w", d.Source, err)
		}
	}
	return inMountNS(pid, func(root int) error {
		// The unmount goes by the last name only, from the parent held
		// open: the instance cannot swap a symlink into the path between
		// the check and the unmount, and a mount point cannot be renamed.
		p := filepath.Clean("/" + d.Path)
		base := filepath.Base(p)
		for {
			parent, err := resolve(root, filepath.Dir(p))
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", d.Path, err)
			}
			var st unix.Stat_t
			err = unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil {
				err = unix.Fchdir(parent) // this thread's alone: it unshared CLONE_FS
			}
			unix.Close(parent)
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", d.Path, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || d.Source != "" && (st.Dev != src.Dev || st.Ino != src.Ino) {
				return nil // not (or no longer) the disk there
			}
			err = unix.Unmount(base, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			if errors.Is(err, unix.EINVAL) {
				return nil // not a mount point
			}
			if err != nil || d.Source == "" {
				return err
			}
		}
	})
}

// inMountNS runs fn on a thread of its own that has entered the mount
// namespace of pid, with a descriptor of its root. The thread is not given
// back to Go: its root and namespaces are no longer the process's.
func inMountNS(pid int, fn func(root int) error) error {
	ns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the mount namespace of %d: %w", pid, err)
	}
	defer unix.Close(ns)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: the thread ends with it
		done <- func() error {
			// setns into a mount namespace refuses a thread that shares
			// its root and working directory with others.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unshare the filesystem attributes: %w", err)
			}
			if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("enter the mount namespace of %d: %w", pid, err)
			}
			root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(root)
			return fn(root)
		}()
	}()
	return <-done
}

// resolveHow resolves a path inside the container's root: no symlink,
// absolute or not, nor "..", leads out of it, and no magic link of proc.
var resolveHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

// resolve opens directory p under root, as if root were "/".
func resolve(root int, p string) (int, error) {
	how := resolveHow
	rel := "." + filepath.Clean("/"+p)
	for {
		fd, err := unix.Openat2(root, rel, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// CheckPath checks that directory p, in the container whose root
// filesystem is rootDir, is one or could be made: a part of it that
// exists and is not a directory is an Invalid error.
func CheckPath(rootDir, p string) error {
	root, err := unix.Open(rootDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the instance's root: %w", err)
	}
	defer unix.Close(root)
	p = filepath.Clean("/" + p)
	for q := p; ; q = filepath.Dir(q) {
		fd, err := resolve(root, q)
		switch {
		case err == nil:
			unix.Close(fd)
			return nil
		case errors.Is(err, unix.ENOTDIR):
			return errkind.Wrap(errkind.Invalid, "%s in the instance is not a directory", q)
		case !errors.Is(err, unix.ENOENT):
			return fmt.Errorf("%s in the instance: %w", q, err)
		case q == "/":
			return nil
		}
	}
}

// makePath opens directory p under root, making what is missing of it.
// A part of it that exists and is not a directory is an Invalid error.
func makePath(root int, p string) (int, error) {
	p = filepath.Clean("/" + p)
	fd, err := resolve(root, p)
	if errors.Is(err, unix.ENOENT) && p != "/" {
		parent, perr := makePath(root, filepath.Dir(p))
		if perr != nil {
			return -1, perr
		}
		err = unix.Mkdirat(parent, filepath.Base(p), 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("make %s in the instance: %w", p, err)
		}
		fd, err = resolve(root, p)
	}
	if errors.Is(err, unix.ENOTDIR) {
		return -1, errkind.Wrap(errkind.Invalid, "%s in the instance is not a directory", p)
	}
	if err != nil {
		return -1, fmt.Errorf("%s in the instance: %w", p, err)
	}
	return fd, nil
}

// rootOwner is the host's UID and GID of the root of the user namespace
// of pid.
func rootOwner(pid int) ([2]int, error) {
	var out [2]int
	for i, f := range []string{"uid_map", "gid_map"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f)
		if err != nil {
			return out, err
		}
		fields := strings.Fields(string(b))
		if len(fields) < 3 || fields[0] != "0" {
			return out, fmt.Errorf("the %s of %d maps no root", f, pid)
		}
		if out[i], err = strconv.Atoi(fields[1]); err != nil {
			return out, fmt.Errorf("the %s of %d: %w", f, pid, err)
		}
	}
	return out, nil
}

func noIdmap(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}
