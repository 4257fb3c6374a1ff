package container

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/silo-dev/silo/metrics"
)

// A cgroup v2 directory, as the kernel writes its files, reads into the
// figures LXD names: this host mounts cgroup v1's controllers, so the
// commands' tests read v1.
func TestUsageV2(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"cpu.stat":              "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnr_periods 0\n",
		"cpuset.cpus.effective": "0-3,6\n",
		"memory.current":        "104857600\n",
		"memory.max":            "268435456\n",
		"memory.swap.current":   "4096\n",
		"memory.stat":           "anon 52428800\nfile 41943040\nshmem 1048576\nfile_mapped 2097152\nfile_dirty 8192\nfile_writeback 0\nactive_anon 40000000\ninactive_anon 12428800\nactive_file 30000000\ninactive_file 11943040\nunevictable 0\n",
		"memory.events":         "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n",
		"io.stat":               "254:77 rbytes=1048576 wbytes=4194304 rios=16 wios=64 dbytes=0 dios=0\n",
		"pids.current":          "7\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var m metrics.Instance
	if err := usageV2(dir, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.CPU) != 1 || m.CPU[0].User != 2.5 || m.CPU[0].System != 1 || m.EffectiveCPUs != 5 {
		t.Errorf("CPU: %+v, %d effective", m.CPU, m.EffectiveCPUs)
	}
	mem := m.Memory
	if mem["MemTotal"] != 256<<20 || mem["MemFree"] != 156<<20 || mem["RSS"] != 50<<20 || mem["Cached"] != 40<<20 ||
		mem["Swap"] != 4096 || mem["Active"] != 70000000 || mem["MemAvailable"] != 156<<20+41943040 || m.OOMKills != 1 {
		t.Errorf("memory: %v, %d OOM kills", mem, m.OOMKills)
	}
	want := metrics.Disk{Device: "254:77", ReadBytes: 1 << 20, Reads: 16, WrittenBytes: 4 << 20, Writes: 64}
	if len(m.Disks) != 1 || m.Disks[0] != want || m.Processes != 7 {
		t.Errorf("disks %+v, %d processes", m.Disks, m.Processes)
	}
	for _, name := range metrics.MemoryNames {
		if _, ok := mem[name]; !ok {
			t.Errorf("no memory figure %s", name)
		}
	}
}
