package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/metrics"
	"github.com/silo-dev/silo/network"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/storage"
)

// metricsProject is the project every instance is in: silo has no others.
const metricsProject = "default"

// Metrics writes the CPU, memory, disk, network and process figures of
// every running instance to w in the Prometheus text format, as LXD
// serves them at /1.0/metrics. A stopped instance has none. What cannot
// be read of one instance (it stopped meanwhile) is logged and left out;
// the others are still written.
func (e *Engine) Metrics(ctx context.Context, w io.Writer) error {
	var todo []metricsTarget
	err := e.store.View(func(tx *store.Tx) error {
		return eachInstance(tx, func(_, x *store.Instance, run *store.Run) error {
			if run == nil || !live(run) {
				return nil
			}
			t := metricsTarget{x: x, pid: run.Pid}
			for dev, d := range x.Devices {
				switch {
				case d["type"] == DeviceDisk && d["path"] == "/":
					t.disks = append(t.disks, diskVolume{dev, "/", x.Pool, x.Volume, rootSize(x.Devices) > 0})
				case isDisk(d) && d["pool"] != "":
					v, err := tx.CustomVolume(d["pool"], d["source"])
					if err != nil {
						return err
					}
					t.disks = append(t.disks, diskVolume{dev, d["path"], v.Pool, v.Volume, volumeSize(v.Config) > 0})
				}
			}
			slices.SortFunc(t.disks, func(a, b diskVolume) int { return strings.Compare(a.dev, b.dev) })
			todo = append(todo, t)
			return nil
		})
	})
	if err != nil {
		return err
	}
	out := make([]metrics.Instance, len(todo))
	ok := make([]bool, len(todo))
	// The figures of each instance are a few small files and a statfs a
	// disk: read a few instances at once.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	for i, t := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := e.instanceMetrics(ctx, t)
			if err != nil {
				slog.Warn("metrics of an instance", "instance", t.x.Name, "error", err)
				return
			}
			out[i], ok[i] = *m, true
		}()
	}
	wg.Wait()
	var done []metrics.Instance
	for i := range out {
		if ok[i] {
			done = append(done, out[i])
		}
	}
	return metrics.Write(w, done)
}

// metricsTarget is a running instance, x (expanded), whose init is pid,
// and its disks that are volumes of a pool: its root, its custom volumes.
type metricsTarget struct {
	x     *store.Instance
	pid   int
	disks []diskVolume
}

// diskVolume is disk device dev, at path in the instance, which mounts
// volume vol (an ID) of pool; capped says whether the volume has a cap.
type diskVolume struct {
	dev, path, pool, vol string
	capped               bool
}

// instanceMetrics gathers the figures of t.
func (e *Engine) instanceMetrics(ctx context.Context, t metricsTarget) (*metrics.Instance, error) {
	m := &metrics.Instance{Name: t.x.Name, Project: metricsProject, Type: api.TypeContainer}
	if err := container.Usage(e.cgroup(t.x.Name), m); err != nil {
		return nil, err
	}
	stats, err := network.AllStats(t.pid)
	if err != nil {
		return nil, fmt.Errorf("nics: %w", err)
	}
	for dev, d := range t.x.Devices {
		if d["type"] != DeviceNIC {
			continue
		}
		name := nicName(dev, d)
		if s, ok := stats[name]; ok {
			m.NICs = append(m.NICs, metrics.NIC{Device: name, RxBytes: s.RxBytes, RxPackets: s.RxPackets, RxErrs: s.RxErrs,
				RxDrop: s.RxDrop, TxBytes: s.TxBytes, TxPackets: s.TxPackets, TxErrs: s.TxErrs, TxDrop: s.TxDrop})
		}
	}
	slices.SortFunc(m.NICs, func(a, b metrics.NIC) int { return strings.Compare(a.Device, b.Device) })
	for _, dv := range t.disks {
		fs, err := e.diskFilesystem(ctx, dv)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", dv.dev, err)
		}
		m.Filesystems = append(m.Filesystems, fs)
	}
	return m, nil
}

// diskFilesystem is the space of disk dv: its cap and what is left of it
// when it has one, else the space of the pool's filesystem, as a statfs
// inside the instance would find it.
func (e *Engine) diskFilesystem(ctx context.Context, dv diskVolume) (metrics.Filesystem, error) {
	d, p, err := e.driver(ctx, dv.pool)
	if err != nil {
		return metrics.Filesystem{}, err
	}
	fs := metrics.Filesystem{Device: dv.dev, Mountpoint: dv.path, FSType: p.Driver}
	path, err := d.VolumePath(ctx, dv.vol)
	if err != nil {
		return fs, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fs, fmt.Errorf("statfs: %w", err)
	}
	fs.Size, fs.Free, fs.Avail = st.Blocks*uint64(st.Bsize), st.Bfree*uint64(st.Bsize), st.Bavail*uint64(st.Bsize)
	// Only a capped volume pays for the count of what it holds, which
	// walks the tree on some drivers.
	if q, ok := d.(storage.Quota); ok && dv.capped {
		limit, err := q.Quota(ctx, dv.vol)
		if err != nil {
			return fs, fmt.Errorf("cap: %w", err)
		}
		used, err := d.Usage(ctx, storage.Ref{Volume: dv.vol})
		if err != nil {
			return fs, fmt.Errorf("usage: %w", err)
		}
		if limit > 0 {
			fs.Size, fs.Free = uint64(limit), uint64(max(0, limit-used))
			fs.Avail = min(fs.Avail, fs.Free)
		}
	}
	return fs, nil
}
