package container

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/metrics"
)

// Usage fills in what cgroup (an absolute cgroup path, the same in every
// hierarchy) has used: CPU time, memory, block I/O and processes, from
// cgroup v1's controllers where they are mounted, else from cgroup v2.
// The figures count the cgroups below too: an instance's systemd makes
// its own.
func Usage(cgroup string, m *metrics.Instance) error {
	v1 := func(ctrl string) string { return filepath.Join("/sys/fs/cgroup", ctrl, cgroup) }
	if _, err := os.Stat(v1("memory")); err == nil {
		return usageV1(v1, m)
	}
	return usageV2(filepath.Join("/sys/fs/cgroup", cgroup), m)
}

func usageV1(dir func(ctrl string) string, m *metrics.Instance) error {
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	try(eachLine(filepath.Join(dir("cpuacct"), "cpuacct.usage_all"), func(f []string) error {
		// "cpu user system", then a line per CPU, in nanoseconds.
		if len(f) != 3 || f[0] == "cpu" {
			return nil
		}
		user, err1 := strconv.ParseUint(f[1], 10, 64)
		sys, err2 := strconv.ParseUint(f[2], 10, 64)
		m.CPU = append(m.CPU, metrics.CPU{CPU: f[0], User: float64(user) / 1e9, System: float64(sys) / 1e9})
		return errors.Join(err1, err2)
	}))
	var err error
	m.EffectiveCPUs, err = countCPUs(filepath.Join(dir("cpuset"), "cpuset.effective_cpus"))
	try(err)
	st, err := keyed(filepath.Join(dir("memory"), "memory.stat"))
	try(err)
	usage, err := readUint(filepath.Join(dir("memory"), "memory.usage_in_bytes"))
	try(err)
	limit, err := readUint(filepath.Join(dir("memory"), "memory.limit_in_bytes"))
	try(err)
	memory(m, usage, limit, map[string]uint64{
		"Active_anon": st["total_active_anon"], "Active_file": st["total_active_file"],
		"Inactive_anon": st["total_inactive_anon"], "Inactive_file": st["total_inactive_file"],
		"Cached": st["total_cache"], "Dirty": st["total_dirty"], "Mapped": st["total_mapped_file"],
		"RSS": st["total_rss"], "Shmem": st["total_shmem"], "Swap": st["total_swap"],
		"Unevictable": st["total_unevictable"], "Writeback": st["total_writeback"],
	})
	oom, err := keyed(filepath.Join(dir("memory"), "memory.oom_control"))
	try(err)
	m.OOMKills = oom["oom_kill"]
	disks := map[string]*metrics.Disk{}
	for _, f := range []struct {
		file   string
		fields func(d *metrics.Disk) (read, write *uint64)
	}{
		{"blkio.throttle.io_service_bytes_recursive", func(d *metrics.Disk) (*uint64, *uint64) { return &d.ReadBytes, &d.WrittenBytes }},
		{"blkio.throttle.io_serviced_recursive", func(d *metrics.Disk) (*uint64, *uint64) { return &d.Reads, &d.Writes }},
	} {
		try(eachLine(filepath.Join(dir("blkio"), f.file), func(l []string) error {
			// "MAJ:MIN Read|Write|Sync|Async|Discard|Total N", and a last "Total N".
			if len(l) != 3 || (l[1] != "Read" && l[1] != "Write") {
				return nil
			}
			n, err := strconv.ParseUint(l[2], 10, 64)
			r, w := f.fields(disk(disks, l[0]))
			if l[1] == "Read" {
				*r += n
			} else {
				*w += n
			}
			return err
		}))
	}
	m.Disks = sortedDisks(disks)
	m.Processes, err = readUint(filepath.Join(dir("pids"), "pids.current"))
	try(err)
	return errors.Join(errs...)
}

func usageV2(dir string, m *metrics.Instance) error {
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	cpu, err := keyed(filepath.Join(dir, "cpu.stat"))
	try(err)
	// cgroup v2 does not count time per CPU: all of it goes to CPU 0, as
	// LXD does.
	m.CPU = []metrics.CPU{{CPU: "0", User: float64(cpu["user_usec"]) / 1e6, System: float64(cpu["system_usec"]) / 1e6}}
	m.EffectiveCPUs, err = countCPUs(filepath.Join(dir, "cpuset.cpus.effective"))
	try(err)
	st, err := keyed(filepath.Join(dir, "memory.stat"))
	try(err)
	usage, err := readUint(filepath.Join(dir, "memory.current"))
	try(err)
	limit, _ := readUint(filepath.Join(dir, "memory.max")) // "max": no limit
	swap, _ := readUint(filepath.Join(dir, "memory.swap.current"))
	memory(m, usage, limit, map[string]uint64{
		"Active_anon": st["active_anon"], "Active_file": st["active_file"],
		"Inactive_anon": st["inactive_anon"], "Inactive_file": st["inactive_file"],
		"Cached": st["file"], "Dirty": st["file_dirty"], "Mapped": st["file_mapped"],
		"RSS": st["anon"], "Shmem": st["shmem"], "Swap": swap,
		"Unevictable": st["unevictable"], "Writeback": st["file_writeback"],
	})
	events, err := keyed(filepath.Join(dir, "memory.events"))
	try(err)
	m.OOMKills = events["oom_kill"]
	disks := map[string]*metrics.Disk{}
	try(eachLine(filepath.Join(dir, "io.stat"), func(l []string) error {
		// "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"
		if len(l) < 2 {
			return nil
		}
		d := disk(disks, l[0])
		for _, kv := range l[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("io.stat: %q: %w", kv, err)
			}
			switch k {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WrittenBytes = n
			case "rios":
				d.Reads = n
			case "wios":
				d.Writes = n
			}
		}
		return nil
	}))
	m.Disks = sortedDisks(disks)
	m.Processes, err = readUint(filepath.Join(dir, "pids.current"))
	try(err)
	return errors.Join(errs...)
}

// memory fills in m's memory from what the cgroup uses, its limit (none
// when above the host's memory) and its figures by LXD's names.
func memory(m *metrics.Instance, usage, limit uint64, figures map[string]uint64) {
	if total := hostMemory(); limit == 0 || limit > total {
		limit = total
	}
	figures["Active"] = figures["Active_anon"] + figures["Active_file"]
	figures["Inactive"] = figures["Inactive_anon"] + figures["Inactive_file"]
	figures["MemTotal"] = limit
	if usage < limit {
		figures["MemFree"] = limit - usage
	}
	// What the cgroup could have without swapping: the free memory and
	// the page cache that it can drop.
	figures["MemAvailable"] = min(limit, figures["MemFree"]+figures["Inactive_file"]+figures["Active_file"])
	m.Memory = figures
}

// hostMemory is the host's memory in bytes.
func hostMemory() uint64 {
	var total uint64
	_ = eachLine("/proc/meminfo", func(f []string) error {
		if len(f) == 3 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			total = kb * 1024
			return err
		}
		return nil
	})
	return total
}

// disk returns the entry of the block device majmin ("8:0") in disks,
// made on first use and named as the kernel names it.
func disk(disks map[string]*metrics.Disk, majmin string) *metrics.Disk {
	if d := disks[majmin]; d != nil {
		return d
	}
	name := majmin
	if link, err := os.Readlink("/sys/dev/block/" + majmin); err == nil {
		name = filepath.Base(link)
	}
	d := &metrics.Disk{Device: name}
	disks[majmin] = d
	return d
}

func sortedDisks(disks map[string]*metrics.Disk) []metrics.Disk {
	out := make([]metrics.Disk, 0, len(disks))
	for _, d := range disks {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b metrics.Disk) int { return strings.Compare(a.Device, b.Device) })
	return out
}

// countCPUs counts the CPUs in a cpuset list such as "0-3,6".
func countCPUs(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if r == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err := errors.Join(err1, err2); err != nil || b < a {
			return 0, fmt.Errorf("%s: bad CPU list %q", file, r)
		}
		n += b - a + 1
	}
	return n, nil
}

// keyed reads a cgroup file of "key value" lines.
func keyed(file string) (map[string]uint64, error) {
	out := map[string]uint64{}
	return out, eachLine(file, func(f []string) error {
		if len(f) != 2 {
			return nil
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		out[f[0]] = n
		return err
	})
}

// readUint reads a file that holds one number; "max" reads as 0.
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// eachLine calls fn with the fields of each line of file.
func eachLine(file string, fn func(fields []string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if err := fn(strings.Fields(sc.Text())); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	return sc.Err()
}
