package btrfs

/*
#include <linux/btrfs.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	cbtrfs "github.com/containerd/btrfs/v2"
	"golang.org/x/sys/unix"
)

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// setReadOnly sets or clears the read-only flag of the subvolume at path.
func setReadOnly(path string, ro bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var flags uint64
	if err := ioctl(f.Fd(), C.BTRFS_IOC_SUBVOL_GETFLAGS, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("get flags of %s: %w", path, err)
	}
	if ro {
		flags |= C.BTRFS_SUBVOL_RDONLY
	} else {
		flags &^= C.BTRFS_SUBVOL_RDONLY
	}
	if err := ioctl(f.Fd(), C.BTRFS_IOC_SUBVOL_SETFLAGS, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("set read-only=%v on %s: %w", ro, path, err)
	}
	return nil
}

// deleteSubvol deletes the subvolume at path in one ioctl. Only when it
// holds nested subvolumes (a container may make its own) does it fall back
// to containerd's delete, which walks the whole tree to find them.
func deleteSubvol(path string) error {
	parent, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer parent.Close()
	var args C.struct_btrfs_ioctl_vol_args
	name := filepath.Base(path)
	if len(name) >= len(args.name) {
		return fmt.Errorf("subvolume name %q too long", name)
	}
	for i := 0; i < len(name); i++ {
		args.name[i] = C.char(name[i])
	}
	err = ioctl(parent.Fd(), C.BTRFS_IOC_SNAP_DESTROY, unsafe.Pointer(&args))
	if errors.Is(err, unix.ENOTEMPTY) {
		return cbtrfs.SubvolDelete(path)
	}
	if err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	return nil
}
