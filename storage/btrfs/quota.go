package btrfs

/*
#include <linux/btrfs.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	cbtrfs "github.com/containerd/btrfs/v2"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/storage"
)

// A volume's cap is the max_rfer limit of a level-1 quota group, 1/ID for
// the subvolume ID of the volume, that holds the volume's own group 0/ID,
// on a filesystem with simple quotas (squota, Linux 6.7).
//
// Why not a limit on 0/ID alone, as LXD does (canonical/lxd#7062): a
// subvolume is a quota group of its own, and anyone who can write to a
// directory can make one there, so a container that makes a subvolume
// inside its root writes past the cap. Under simple quotas, a new
// subvolume joins the level-1 group of the subvolume it is made in, so
// what the container makes stays under 1/ID. Simple quotas also charge an
// extent to the subvolume that wrote it until it is freed: a snapshot that
// keeps deleted data alive keeps it charged, so snapshotting and deleting
// cannot make room either. (Under full quotas an exclusive limit lets a
// snapshot make the whole volume shared, and room for as much again.) What
// the head shares with its image is charged to the image, not to it.
const (
	quotaCtlEnableSimple = 4 // BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA, newer than the headers
	clearLimit           = ^uint64(0)
)

func qgroupID(level, id uint64) uint64 { return level<<48 | id }

// quotaDir is the sysfs directory of the filesystem's quota groups; it
// exists while quotas are on.
func (d *driver) quotaDir() (string, error) {
	f, err := os.Open(d.layout.Root)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var info C.struct_btrfs_ioctl_fs_info_args
	if err := ioctl(f.Fd(), C.BTRFS_IOC_FS_INFO, unsafe.Pointer(&info)); err != nil {
		return "", fmt.Errorf("filesystem of %s: %w", d.layout.Root, err)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(info.fsid[i])
	}
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	return filepath.Join("/sys/fs/btrfs", id, "qgroups"), nil
}

// enableQuotas turns simple quotas on. Full quotas, turned on by someone
// else, would let subvolumes escape the caps: they are refused.
func (d *driver) enableQuotas(dir string) error {
	mode, err := os.ReadFile(filepath.Join(dir, "mode"))
	if err == nil {
		if m := strings.TrimSpace(string(mode)); m != "squota" {
			return errkind.Wrap(errkind.Invalid, "its btrfs has full quotas (%s), under which a subvolume made in an instance escapes its cap: turn them off (btrfs quota disable %s) and silo turns on simple ones", m, d.layout.Root)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return d.qgroupIoctl(C.BTRFS_IOC_QUOTA_CTL, unsafe.Pointer(&C.struct_btrfs_ioctl_quota_ctl_args{cmd: quotaCtlEnableSimple}), "turn on simple quotas")
}

func (d *driver) qgroupIoctl(req uint, arg unsafe.Pointer, what string) error {
	f, err := os.Open(d.layout.Root)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := ioctl(f.Fd(), req, arg); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return errkind.Wrap(errkind.Invalid, "%s: the kernel has no simple quotas (Linux 6.7 or later): %w", what, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (d *driver) subvolID(vol string) (uint64, error) {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return 0, err
	}
	info, err := cbtrfs.SubvolInfo(p)
	if err != nil {
		return 0, fmt.Errorf("subvolume of %s: %w", vol, err)
	}
	return info.ID, nil
}

func (d *driver) SetQuota(ctx context.Context, vol string, bytes int64) error {
	id, err := d.subvolID(vol)
	if err != nil {
		return err
	}
	dir, err := d.quotaDir()
	if err != nil {
		return err
	}
	group := filepath.Join(dir, fmt.Sprintf("1_%d", id))
	if bytes == 0 {
		if _, err := os.Stat(group); errors.Is(err, os.ErrNotExist) {
			return nil // never capped: quotas need not be on
		}
	} else if err := d.enableQuotas(dir); err != nil {
		return err
	}
	q := qgroupID(1, id)
	if err := d.qgroupIoctl(C.BTRFS_IOC_QGROUP_CREATE, unsafe.Pointer(&C.struct_btrfs_ioctl_qgroup_create_args{create: 1, qgroupid: C.__u64(q)}), "create quota group"); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	assign := C.struct_btrfs_ioctl_qgroup_assign_args{assign: 1, src: C.__u64(qgroupID(0, id)), dst: C.__u64(q)}
	if err := d.qgroupIoctl(C.BTRFS_IOC_QGROUP_ASSIGN, unsafe.Pointer(&assign), "assign quota group"); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	limit := C.struct_btrfs_ioctl_qgroup_limit_args{qgroupid: C.__u64(q)}
	limit.lim.flags = C.BTRFS_QGROUP_LIMIT_MAX_RFER
	limit.lim.max_rfer = C.__u64(clearLimit)
	if bytes > 0 {
		limit.lim.max_rfer = C.__u64(bytes)
	}
	return d.qgroupIoctl(C.BTRFS_IOC_QGROUP_LIMIT, unsafe.Pointer(&limit), "limit quota group")
}

func (d *driver) Quota(ctx context.Context, vol string) (int64, error) {
	id, err := d.subvolID(vol)
	if err != nil {
		return 0, err
	}
	dir, err := d.quotaDir()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("1_%d", id), "max_referenced"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// dropQuota takes the level-1 group of subvolume id apart, once the
// subvolume is deleted. Subvolumes made inside it may still belong to the
// group, which then stays: it limits nothing any more.
func (d *driver) dropQuota(id uint64) {
	dir, err := d.quotaDir()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("1_%d", id))); err != nil {
		return
	}
	q := qgroupID(1, id)
	assign := C.struct_btrfs_ioctl_qgroup_assign_args{assign: 0, src: C.__u64(qgroupID(0, id)), dst: C.__u64(q)}
	err = d.qgroupIoctl(C.BTRFS_IOC_QGROUP_ASSIGN, unsafe.Pointer(&assign), "unassign quota group")
	if err == nil {
		err = d.qgroupIoctl(C.BTRFS_IOC_QGROUP_CREATE, unsafe.Pointer(&C.struct_btrfs_ioctl_qgroup_create_args{create: 0, qgroupid: C.__u64(q)}), "destroy quota group")
	}
	if err != nil {
		slog.Debug("quota group of a deleted volume kept", "group", fmt.Sprintf("1/%d", id), "error", err)
	}
}
