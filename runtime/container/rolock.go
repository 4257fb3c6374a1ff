package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The flags of a mount that silo moves into an unprivileged container
// (read-only, nosuid, nodev) are not locked: the container's root, which
// holds its mount namespace, could remount it read-write, or with setuid
// bits honoured. The kernel locks a mount's flags only when
// it copies a mount namespace into one owned by a less privileged user
// namespace. So the tree is attached in a private namespace of a thread
// of silo's, a child in a user namespace of its own copies that
// namespace (locking every flag), clones the tree from its copy and hands
// it back: the clone keeps the lock, and no longer the copy's lock
// against unmounting.

const (
	envLockedClone = "SILO_LOCKED_CLONE" // the path the child clones
	stagingDir     = "/tmp"              // a tmpfs over it, in the private namespace only
)

// lockedFlags returns a clone of the detached tree whose flags no user
// namespace below the host's can clear; owner is the host's UID and GID
// the child runs as.
func lockedFlags(tree int, owner [2]int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: its namespace is its own
		fd, err := func() (int, error) {
			if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
				return -1, fmt.Errorf("a private mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return -1, fmt.Errorf("make the private mount namespace private: %w", err)
			}
			if err := unix.Mount("tmpfs", stagingDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
				return -1, fmt.Errorf("a staging tmpfs: %w", err)
			}
			at := stagingDir + "/disk"
			if err := unix.Mkdir(at, 0o755); err != nil {
				return -1, err
			}
			if err := unix.MoveMount(tree, "", unix.AT_FDCWD, at, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return -1, fmt.Errorf("stage the disk: %w", err)
			}
			return cloneLocked(at, owner)
		}()
		done <- result{fd, err}
	}()
	r := <-done
	return r.fd, r.err
}

// cloneLocked runs a child in a user and mount namespace of its own,
// which clones the mount at path in its copy of this thread's mount
// namespace and sends it back.
func cloneLocked(path string, owner [2]int) (int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "clone"), os.NewFile(uintptr(pair[1]), "clone")
	defer ours.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"silo-locked-clone"}
	cmd.Env = []string{envLockedClone + "=" + path}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: owner[0], Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: owner[1], Size: 1}},
		// Root in its namespace, so that its exec keeps the capabilities.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		Pdeathsig:  syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	theirs.Close()
	if err != nil {
		return -1, fmt.Errorf("lock the flags of the disk: %w: %s", err, out)
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(pair[0], make([]byte, 1), oob, unix.MSG_DONTWAIT)
	if err != nil {
		return -1, fmt.Errorf("lock the flags of the disk: receive: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, errors.New("lock the flags of the disk: no tree received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, errors.New("lock the flags of the disk: no tree received")
	}
	return fds[0], nil
}

// LockedCloneMain is the child of cloneLocked, when the environment says
// so: it returns whether it ran, and its exit code.
func LockedCloneMain() (ran bool, code int) {
	path, ok := os.LookupEnv(envLockedClone)
	if !ok {
		return false, 0
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		err = unix.Sendmsg(3, []byte{0}, unix.UnixRights(tree), nil, 0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "clone %s: %v\n", path, err)
		return true, 1
	}
	return true, 0
}
