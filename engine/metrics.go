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
	var todo []*store.Instance
	pids := map[string]int{}
	err := e.store.View(func(tx *store.Tx) error {
		return eachInstance(tx, func(_, x *store.Instance, run *store.Run) error {
			if run != nil && live(run) {
				todo, pids[x.Name] = append(todo, x), run.Pid
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	out := make([]metrics.Instance, len(todo))
	ok := make([]bool, len(todo))
	// The figures of each instance are a few small files and a statfs:
	// read a few instances at once.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	for i, x := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := e.instanceMetrics(ctx, x, pids[x.Name])
			if err != nil {
				slog.Warn("metrics of an instance", "instance", x.Name, "error", err)
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

// instanceMetrics gathers the figures of x (expanded), whose init is pid.
func (e *Engine) instanceMetrics(ctx context.Context, x *store.Instance, pid int) (*metrics.Instance, error) {
	m := &metrics.Instance{Name: x.Name, Project: metricsProject, Type: api.TypeContainer}
	if err := container.Usage(e.cgroup(x.Name), m); err != nil {
		return nil, err
	}
	stats, err := network.AllStats(pid)
	if err != nil {
		return nil, fmt.Errorf("nics: %w", err)
	}
	for dev, d := range x.Devices {
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
	fs, err := e.rootFilesystem(ctx, x)
	if err != nil {
		return nil, err
	}
	m.Filesystems = []metrics.Filesystem{fs}
	return m, nil
}

// rootFilesystem is the space of x's root disk: its cap and what is left
// of it when it has one, else the space of the pool's filesystem, as a
// statfs inside the instance would find it.
func (e *Engine) rootFilesystem(ctx context.Context, x *store.Instance) (metrics.Filesystem, error) {
	dev, _ := rootDisk(x.Devices)
	d, p, err := e.driver(ctx, x.Pool)
	if err != nil {
		return metrics.Filesystem{}, err
	}
	fs := metrics.Filesystem{Device: dev, Mountpoint: "/", FSType: p.Driver}
	path, err := d.VolumePath(ctx, x.Volume)
	if err != nil {
		return fs, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fs, fmt.Errorf("statfs %s's root: %w", x.Name, err)
	}
	fs.Size, fs.Free, fs.Avail = st.Blocks*uint64(st.Bsize), st.Bfree*uint64(st.Bsize), st.Bavail*uint64(st.Bsize)
	// Only a capped root pays for the count of what it holds, which walks
	// the tree on some drivers.
	if q, ok := d.(storage.Quota); ok && rootSize(x.Devices) > 0 {
		limit, err := q.Quota(ctx, x.Volume)
		if err != nil {
			return fs, fmt.Errorf("cap of %s's root: %w", x.Name, err)
		}
		used, err := d.Usage(ctx, storage.Ref{Volume: x.Volume})
		if err != nil {
			return fs, fmt.Errorf("usage of %s's root: %w", x.Name, err)
		}
		if limit > 0 {
			fs.Size, fs.Free = uint64(limit), uint64(max(0, limit-used))
			fs.Avail = min(fs.Avail, fs.Free)
		}
	}
	return fs, nil
}
