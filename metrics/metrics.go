// Package metrics writes the usage of instances in the Prometheus text
// format, with the metric names and labels that LXD and Incus serve at
// /1.0/metrics, under the prefix silo_, so that their dashboards and
// alerts carry over with the prefix changed.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Instance is what one running instance uses.
type Instance struct {
	Name, Project, Type string
	CPU                 []CPU
	EffectiveCPUs       int
	// Memory maps LXD's names of memory figures (Active_anon, Cached,
	// MemTotal, RSS...) to bytes.
	Memory      map[string]uint64
	OOMKills    uint64
	Disks       []Disk
	Filesystems []Filesystem
	NICs        []NIC
	Processes   uint64
}

// CPU is the time one CPU spent on an instance, in seconds.
type CPU struct {
	CPU          string
	User, System float64
}

// Disk is what an instance read from and wrote to a block device.
type Disk struct {
	Device                                 string
	ReadBytes, Reads, WrittenBytes, Writes uint64
}

// Filesystem is the space of one of an instance's disks.
type Filesystem struct {
	Device, Mountpoint, FSType string
	Size, Free, Avail          uint64
}

// NIC is one of an instance's nics, counted as the instance sees it.
type NIC struct {
	Device                             string
	RxBytes, RxPackets, RxErrs, RxDrop uint64
	TxBytes, TxPackets, TxErrs, TxDrop uint64
}

// family is one metric: its name (without the prefix), help, type, and
// the samples it takes from an instance.
type family struct {
	name, help, typ string
	samples         func(i *Instance) []sample
}

type sample struct {
	labels []string // name, value pairs after the instance's own
	value  float64
}

func one(v uint64) []sample { return []sample{{value: float64(v)}} }

// memoryHelp describes the memory figures LXD serves.
var memoryHelp = map[string]string{
	"Active_anon": "Amount of anonymous memory on active LRU list", "Active": "Amount of memory on active LRU list",
	"Active_file": "Amount of file-backed memory on active LRU list", "Cached": "Amount of cached memory",
	"Dirty": "Amount of memory waiting to be written back to the disk", "Inactive_anon": "Amount of anonymous memory on inactive LRU list",
	"Inactive": "Amount of memory on inactive LRU list", "Inactive_file": "Amount of file-backed memory on inactive LRU list",
	"Mapped": "Amount of mapped memory", "MemAvailable": "Amount of available memory", "MemFree": "Amount of free memory",
	"MemTotal": "Amount of usable memory", "RSS": "Amount of anonymous and swap cache memory",
	"Shmem": "Amount of cached file system data that is swap-backed", "Swap": "Amount of used swap memory",
	"Unevictable": "Amount of unevictable memory", "Writeback": "Amount of memory queued for syncing to disk",
}

// MemoryNames are the memory figures, by LXD's names, that Memory holds.
var MemoryNames = slices.Sorted(maps.Keys(memoryHelp))

func families() []family {
	fs := []family{
		{"cpu_effective_total", "Total number of effective CPUs", "gauge", func(i *Instance) []sample { return one(uint64(i.EffectiveCPUs)) }},
		{"cpu_seconds_total", "Total number of CPU time used (in seconds)", "counter", func(i *Instance) []sample {
			var out []sample
			for _, c := range i.CPU {
				out = append(out, sample{[]string{"cpu", c.CPU, "mode", "system"}, c.System}, sample{[]string{"cpu", c.CPU, "mode", "user"}, c.User})
			}
			return out
		}},
	}
	disk := func(name, help string, v func(d Disk) uint64) family {
		return family{name, help, "counter", func(i *Instance) []sample {
			var out []sample
			for _, d := range i.Disks {
				out = append(out, sample{[]string{"device", d.Device}, float64(v(d))})
			}
			return out
		}}
	}
	fs = append(fs,
		disk("disk_read_bytes_total", "Total number of bytes read", func(d Disk) uint64 { return d.ReadBytes }),
		disk("disk_reads_completed_total", "Total number of completed reads", func(d Disk) uint64 { return d.Reads }),
		disk("disk_written_bytes_total", "Total number of bytes written", func(d Disk) uint64 { return d.WrittenBytes }),
		disk("disk_writes_completed_total", "Total number of completed writes", func(d Disk) uint64 { return d.Writes }))
	filesystem := func(name, help string, v func(f Filesystem) uint64) family {
		return family{name, help, "gauge", func(i *Instance) []sample {
			var out []sample
			for _, f := range i.Filesystems {
				out = append(out, sample{[]string{"device", f.Device, "fstype", f.FSType, "mountpoint", f.Mountpoint}, float64(v(f))})
			}
			return out
		}}
	}
	fs = append(fs,
		filesystem("filesystem_avail_bytes", "Available space (in bytes)", func(f Filesystem) uint64 { return f.Avail }),
		filesystem("filesystem_free_bytes", "Free space (in bytes)", func(f Filesystem) uint64 { return f.Free }),
		filesystem("filesystem_size_bytes", "Size of the file system (in bytes)", func(f Filesystem) uint64 { return f.Size }))
	for _, name := range MemoryNames {
		fs = append(fs, family{"memory_" + name + "_bytes", memoryHelp[name], "gauge", func(i *Instance) []sample {
			if v, ok := i.Memory[name]; ok {
				return one(v)
			}
			return nil
		}})
	}
	fs = append(fs, family{"memory_OOM_kills_total", "The number of out-of-memory kills", "counter", func(i *Instance) []sample { return one(i.OOMKills) }})
	nic := func(name, help string, v func(n NIC) uint64) family {
		return family{"network_" + name, help, "counter", func(i *Instance) []sample {
			var out []sample
			for _, n := range i.NICs {
				out = append(out, sample{[]string{"device", n.Device}, float64(v(n))})
			}
			return out
		}}
	}
	return append(fs,
		nic("receive_bytes_total", "Amount of received bytes on a given interface", func(n NIC) uint64 { return n.RxBytes }),
		nic("receive_drop_total", "Amount of received dropped bytes on a given interface", func(n NIC) uint64 { return n.RxDrop }),
		nic("receive_errs_total", "Amount of received errors on a given interface", func(n NIC) uint64 { return n.RxErrs }),
		nic("receive_packets_total", "Amount of received packets on a given interface", func(n NIC) uint64 { return n.RxPackets }),
		nic("transmit_bytes_total", "Amount of transmitted bytes on a given interface", func(n NIC) uint64 { return n.TxBytes }),
		nic("transmit_drop_total", "Amount of transmitted dropped bytes on a given interface", func(n NIC) uint64 { return n.TxDrop }),
		nic("transmit_errs_total", "Amount of transmitted errors on a given interface", func(n NIC) uint64 { return n.TxErrs }),
		nic("transmit_packets_total", "Amount of transmitted packets on a given interface", func(n NIC) uint64 { return n.TxPackets }),
		family{"procs_total", "Number of running processes", "gauge", func(i *Instance) []sample { return one(i.Processes) }},
	)
}

// Prefix goes in front of every metric's name.
const Prefix = "silo_"

// ContentType is the HTTP content type of what Write writes: Prometheus's
// text format, version 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write writes the metrics of insts in the Prometheus text format: each
// metric once, with its help and type, and a sample per instance (and per
// CPU, device or nic). A metric that no instance has is left out.
func Write(w io.Writer, insts []Instance) error {
	bw := bufio.NewWriter(w)
	for _, f := range families() {
		first := true
		for i := range insts {
			for _, s := range f.samples(&insts[i]) {
				if first {
					fmt.Fprintf(bw, "# HELP %s%s %s\n# TYPE %s%s %s\n", Prefix, f.name, f.help, Prefix, f.name, f.typ)
					first = false
				}
				bw.WriteString(Prefix + f.name + "{")
				labels := append(s.labels, "name", insts[i].Name, "project", insts[i].Project, "type", insts[i].Type)
				for j := 0; j < len(labels); j += 2 {
					if j > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(labels[j] + "=" + quote(labels[j+1]))
				}
				bw.WriteString("} " + strconv.FormatFloat(s.value, 'g', -1, 64) + "\n")
			}
		}
	}
	return bw.Flush()
}

// quote quotes a label value as the text format escapes it: backslash,
// double quote and newline.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
