package dir

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/storage"
)

// A volume's cap is a project quota (ext4 or xfs, mounted with
// prjquota): every file and directory of the volume carries the volume's
// project ID, directories pass it to what is made in them, and the
// kernel caps the project's blocks. Only the host's root can change a
// file's project ID, so an instance in a user namespace cannot move its
// files out of the project.

const (
	fsIocFsGetXattr    = 0x801c581f // FS_IOC_FSGETXATTR
	fsIocFsSetXattr    = 0x401c5820 // FS_IOC_FSSETXATTR
	fsXflagProjInherit = 0x200      // FS_XFLAG_PROJINHERIT
	prjQuota           = 2          // PRJQUOTA
	qGetQuota          = 0x800007
	qSetQuota          = 0x800008
	qifBLimits         = 1 // QIF_BLIMITS
	qifBlockSize       = 1024
	firstProject       = 1 << 20 // below are the IDs an administrator would pick by hand
)

type fsxattr struct {
	xflags, extsize, nextents, projid, cowextsize uint32
	_                                             [8]byte
}

// dqblk is struct if_dqblk.
type dqblk struct {
	bhardlimit, bsoftlimit, curspace, ihardlimit, isoftlimit, curinodes, btime, itime uint64
	valid                                                                             uint32
	_                                                                                 uint32
}

func fsxattrOf(f *os.File) (fsxattr, error) {
	var x fsxattr
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFsGetXattr, uintptr(unsafe.Pointer(&x)))
	if errno != 0 {
		return x, errno
	}
	return x, nil
}

// quotactl runs a project quota command on the filesystem of f.
func quotactl(f *os.File, cmd int, id uint32, q *dqblk) error {
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL_FD, f.Fd(), uintptr(cmd<<8|prjQuota), uintptr(id), uintptr(unsafe.Pointer(q)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// project returns the volume's root, opened, and its project ID: 0 when
// it has none yet.
func (d *driver) project(vol string) (*os.File, uint32, error) {
	p, err := d.layout.Existing(storage.Ref{Volume: vol})
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	x, err := fsxattrOf(f)
	if err != nil {
		f.Close()
		return nil, 0, d.noProjects(err)
	}
	return f, x.projid, nil
}

func (d *driver) noProjects(err error) error {
	why := err.Error()
	if errors.Is(err, unix.ESRCH) { // quotactl's way of saying the quota is off, not a process
		why = "project quotas are off"
	}
	return errkind.Wrap(errkind.Invalid, "its filesystem has no project quotas: make it ext4 with -O quota,project or xfs, mounted with prjquota (%s)", why)
}

func (d *driver) SetQuota(ctx context.Context, vol string, bytes int64) error {
	root, id, err := d.project(vol)
	if err != nil {
		return err
	}
	defer root.Close()
	if id == 0 {
		if bytes == 0 {
			return nil // never capped
		}
		if id, err = d.freeProject(root, vol); err != nil {
			return err
		}
		if err := setProject(root.Name(), id); err != nil {
			return fmt.Errorf("give %s its project: %w", vol, err)
		}
	}
	q := dqblk{bhardlimit: uint64((bytes + qifBlockSize - 1) / qifBlockSize), valid: qifBLimits}
	if err := quotactl(root, qSetQuota, id, &q); err != nil {
		return d.noProjects(err)
	}
	return nil
}

func (d *driver) Quota(ctx context.Context, vol string) (int64, error) {
	root, id, err := d.project(vol)
	if errors.Is(err, errkind.Invalid) {
		return 0, nil
	}
	if err != nil || id == 0 {
		return 0, err
	}
	defer root.Close()
	var q dqblk
	if err := quotactl(root, qGetQuota, id, &q); err != nil {
		return 0, d.noProjects(err)
	}
	return int64(q.bhardlimit) * qifBlockSize, nil
}

// freeProject picks a project ID for vol that no file and no limit uses,
// starting from one its ID hashes to. It is also where a filesystem
// without project quotas is found out.
func (d *driver) freeProject(root *os.File, vol string) (uint32, error) {
	h := fnv.New32a()
	h.Write([]byte(vol))
	id := firstProject + h.Sum32()%(1<<30)
	for range 1000 {
		var q dqblk
		if err := quotactl(root, qGetQuota, id, &q); err != nil {
			return 0, d.noProjects(err)
		}
		if q.curspace == 0 && q.curinodes == 0 && q.bhardlimit == 0 {
			return id, nil
		}
		id++
	}
	return 0, fmt.Errorf("no free project ID near %d", id)
}

// setProject gives every directory and regular file below root project
// id, and makes the directories pass it on. Other files (links, devices)
// cannot be opened to be given one; they take no blocks.
func setProject(root string, id uint32) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsDir() && !e.Type().IsRegular() {
			return nil
		}
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		x, err := fsxattrOf(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		x.projid = id
		if e.IsDir() {
			x.xflags |= fsXflagProjInherit
		}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFsSetXattr, uintptr(unsafe.Pointer(&x))); errno != 0 {
			return fmt.Errorf("%s: %w", p, errno)
		}
		return nil
	})
}
