package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
)

// A disk device other than the root mounts a custom volume, or a
// directory of the host's, in the instance: at each start, before init
// runs, and at once in a running instance when it is added. The volume
// or directory stays as it is on disk. An unprivileged instance sees a
// volume through a mount idmapped by its own user namespace; a host
// directory only with shift=true (as LXD's), since its root then writes
// files as the host's root there. No disk mount honours setuid bits or
// device nodes: a volume shared with a privileged instance must not carry
// an unprivileged one's setuid program into it.

// isDisk says whether d is a disk other than the root.
func isDisk(d store.Device) bool { return d["type"] == DeviceDisk && d["path"] != "/" }

// idmapped says whether an unprivileged instance sees the files of disk d
// with its own IDs, through an idmapped mount.
func idmapped(d store.Device) bool { return d["pool"] != "" || d["shift"] == "true" }

// diskSource is the directory on the host that disk d mounts: its custom
// volume's, or the host's directory, checked.
func (e *Engine) diskSource(ctx context.Context, d store.Device) (string, error) {
	if d["pool"] != "" {
		return e.customVolumePath(ctx, d["pool"], d["source"])
	}
	return e.hostDir(d["source"])
}

// hostDir resolves src, a directory of the host's for a disk, through
// its symlinks, and refuses one that is not a directory, or that lies in
// silo's state directory or a pool's directory, or holds one: the
// instance would reach the volumes and records of every other.
func (e *Engine) hostDir(src string) (string, error) {
	p, err := filepath.EvalSymlinks(src)
	if errors.Is(err, os.ErrNotExist) {
		return "", errkind.Wrap(errkind.NotFound, "source %s: no such directory on the host", src)
	}
	if err != nil {
		return "", fmt.Errorf("source %s: %w", src, err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		return "", errkind.Wrap(errkind.Invalid, "source %s is not a directory", src)
	}
	// The run base holds every instance's bundle and the pid files silo
	// acts on.
	for _, own := range []string{e.stateDir, filepath.Dir(e.runBase())} {
		at, err := filepath.Abs(own)
		if err != nil {
			return "", err
		}
		// The run directory is made at the first start after a boot:
		// until then, its path as it will be.
		if real, err := filepath.EvalSymlinks(at); err == nil {
			at = real
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if within(p, at) || within(at, p) {
			return "", errkind.Wrap(errkind.Invalid, "source %s: %s is silo's state directory or run directory, or lies in one, or holds one: an instance must not reach other instances' volumes and silo's records", src, p)
		}
	}
	// A pool made on a directory or a btrfs mount of the host's holds
	// volumes outside the state directory.
	var pools []*store.Pool
	if err := e.store.View(func(tx *store.Tx) (err error) { pools, err = tx.Pools(); return err }); err != nil {
		return "", err
	}
	for _, pool := range pools {
		if !filepath.IsAbs(pool.Source) {
			continue // none, or a zfs dataset
		}
		if at, err := filepath.EvalSymlinks(pool.Source); err == nil && (within(p, at) || within(at, p)) {
			return "", errkind.Wrap(errkind.Invalid, "source %s: %s is pool %s's directory or in it, or holds it: an instance must not reach other instances' volumes", src, p, pool.Name)
		}
	}
	return p, nil
}

// within says whether path p is dir or lies under it; both are absolute
// and clean.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// checkDiskSource checks, as disk device name is given, that its source
// is there and may be mounted.
func (e *Engine) checkDiskSource(ctx context.Context, name string, d store.Device) error {
	if !isDisk(d) {
		return nil
	}
	if _, err := e.diskSource(ctx, d); err != nil {
		return fmt.Errorf("device %s: %w", name, err)
	}
	return nil
}

// checkDisks checks the disks among devs, devices of inst (expanded)
// that came or changed, run set when it runs: their sources; for a
// stopped instance, that their paths can be directories in its root (a
// running one's are made as they are mounted); and for an unprivileged
// instance, that the kernel can idmap their filesystems: else the
// instance would see their files owned by nobody, and could not write
// them.
func (e *Engine) checkDisks(ctx context.Context, inst *store.Instance, run *store.Run, devs []string) error {
	for _, dev := range devs {
		d, ok := inst.Devices[dev]
		if !ok || !isDisk(d) {
			continue
		}
		if run != nil && e.oci(run.Runtime).OwnKernel() {
			return errkind.Wrap(errkind.Invalid, "device %s: runtime %s of running instance %s mounts no disk but the root", dev, run.Runtime, inst.Name)
		}
		src, err := e.diskSource(ctx, d)
		if err != nil {
			return fmt.Errorf("device %s: %w", dev, err)
		}
		if run == nil {
			if err := e.checkDiskPath(ctx, inst, d["path"]); err != nil {
				return fmt.Errorf("device %s: %w", dev, err)
			}
		}
		if privileged(inst.Config) || !idmapped(d) {
			continue
		}
		ok, err = e.canIdmap(src)
		if err != nil {
			return err
		}
		if !ok {
			return errkind.Wrap(errkind.Invalid, "device %s: %s is on a filesystem the kernel cannot idmap (FUSE, as zfs-fuse is), so unprivileged instance %s could not see its files with its own IDs: attach it to a privileged instance, or use a volume on a btrfs or dir pool", dev, d["source"], inst.Name)
		}
	}
	return nil
}

// checkDiskPath checks that path p can be a directory in the root of
// inst, stopped.
func (e *Engine) checkDiskPath(ctx context.Context, inst *store.Instance, p string) error {
	d, _, err := e.driver(ctx, inst.Pool)
	if err != nil {
		return err
	}
	root, err := d.VolumePath(ctx, inst.Volume)
	if err != nil {
		return err
	}
	return container.CheckPath(root, p)
}

// mountDisk mounts disk dev of inst (expanded) in the container whose
// init is pid, or with unmount set, takes it out: also when its source
// has gone from the host since.
func (e *Engine) mountDisk(ctx context.Context, pid int, inst *store.Instance, dev string, unmount bool) error {
	d := inst.Devices[dev]
	disk := container.Disk{Path: d["path"], ReadOnly: d["readonly"] == "true", Shift: idmapped(d)}
	src, err := e.diskSource(ctx, d)
	switch {
	case err == nil && unmount:
		disk.Source = src
		err = container.UnmountDisk(pid, disk)
	case err == nil:
		disk.Source = src
		err = container.MountDisk(pid, disk)
	case unmount && errors.Is(err, errkind.NotFound):
		err = container.UnmountDisk(pid, disk)
	}
	if err != nil {
		return fmt.Errorf("device %s: %w", dev, err)
	}
	return nil
}

// customVolumePath is the directory of custom volume name on pool: its
// head's, mounted if need be.
func (e *Engine) customVolumePath(ctx context.Context, pool, name string) (string, error) {
	var id string
	if err := e.store.View(func(tx *store.Tx) error {
		v, err := tx.CustomVolume(pool, name)
		if err == nil {
			id = v.Volume
		}
		return err
	}); err != nil {
		return "", err
	}
	d, _, err := e.driver(ctx, pool)
	if err != nil {
		return "", err
	}
	return d.VolumePath(ctx, id)
}
