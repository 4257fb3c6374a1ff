package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// silo metrics parses as Prometheus text; a busybox instance that did
// some work (CPU, a direct write, pings to its gateway) has plausible
// figures under LXD's names and labels; a stopped instance has none.
func TestMetrics(t *testing.T) {
	e := bootEnv(t, "btrfs")
	e.launch("bb", "busy")
	e.ok(append([]string{"create", "bb", "idle"}, e.poolArgs()...)...)
	countBlockIO(t, e, "busy")
	gw4, _ := e.gateway("silobr0")
	e.sh("busy", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "+
		"dd if=/dev/zero of=/w bs=64k count=64 oflag=direct; sync; "+
		"ping -c 3 -i 0.2 -W 1 "+gw4.Addr().String()+" >/dev/null")

	fams := parseMetrics(t, e.ok("metrics"))
	// The API serves the same, at /1.0/metrics.
	srv := e.serve()
	r, err := srv.c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if served := parseMetrics(t, string(body)); served["silo_cpu_seconds_total"] == nil || len(served) != len(fams) {
		t.Errorf("/1.0/metrics has %d families, silo metrics %d", len(served), len(fams))
	}
	srv.stop(t)
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams["silo_"+name]
		if f == nil {
			t.Fatalf("no metric silo_%s", name)
		}
		total, found := 0.0, false
	samples:
		for _, m := range f.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			if got["name"] == "idle" {
				t.Errorf("silo_%s has a sample of the stopped instance: %v", name, got)
			}
			if got["name"] != "busy" || got["project"] != "default" || got["type"] != "container" {
				continue
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue samples
				}
			}
			found = true
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
		if !found {
			t.Fatalf("silo_%s has no sample of busy with %v", name, labels)
		}
		return total
	}
	if v := value("cpu_seconds_total", "mode", "user") + value("cpu_seconds_total", "mode", "system"); v <= 0 || v > 600 {
		t.Errorf("CPU time %g s", v)
	}
	if n := value("cpu_effective_total"); n < 1 {
		t.Errorf("%g effective CPUs", n)
	}
	total, free := value("memory_MemTotal_bytes"), value("memory_MemFree_bytes")
	if total <= 0 || free <= 0 || free >= total || value("memory_RSS_bytes")+value("memory_Cached_bytes") <= 0 {
		t.Errorf("memory: total %g, free %g", total, free)
	}
	value("memory_OOM_kills_total")
	if w := value("disk_written_bytes_total"); w < 4<<20 {
		t.Errorf("%g bytes written, want the 4 MiB written with O_DIRECT at least", w)
	}
	if n := value("disk_writes_completed_total"); n < 1 {
		t.Errorf("%g writes", n)
	}
	if rx, tx := value("network_receive_packets_total", "device", "eth0"), value("network_transmit_packets_total", "device", "eth0"); rx < 3 || tx < 3 {
		t.Errorf("eth0: %g packets received, %g sent after 3 pings answered", rx, tx)
	}
	if value("network_receive_bytes_total", "device", "eth0") <= 0 || value("network_transmit_bytes_total", "device", "eth0") <= 0 {
		t.Error("eth0: no bytes counted")
	}
	size := value("filesystem_size_bytes", "device", "root", "mountpoint", "/", "fstype", "btrfs")
	if avail := value("filesystem_avail_bytes", "device", "root"); size <= 0 || avail <= 0 || avail > size {
		t.Errorf("root: size %g, avail %g", size, avail)
	}
	if n := value("procs_total"); n < 1 || n > 100 {
		t.Errorf("%g processes", n)
	}

	// A capped root reports its cap, and what is left of it.
	// So does an attached custom volume, at its path.
	e.ok("config", "device", "set", "busy", "root", "size=64MiB")
	e.ok("volume", "create", e.pool, "data", "size=32MiB")
	e.ok("volume", "attach", e.pool, "data", "busy", "/data")
	fams = parseMetrics(t, e.ok("metrics"))
	if size, free := value("filesystem_size_bytes", "device", "root"), value("filesystem_free_bytes", "device", "root"); size != 64<<20 || free <= 0 || free >= size {
		t.Errorf("capped root: size %g, free %g", size, free)
	}
	if size, free := value("filesystem_size_bytes", "device", "data", "mountpoint", "/data", "fstype", "btrfs"), value("filesystem_free_bytes", "device", "data"); size != 32<<20 || free <= 0 || free > size {
		t.Errorf("capped volume: size %g, free %g", size, free)
	}

	e.ok("stop", "busy", "--force")
	e.ok("volume", "detach", e.pool, "data", "busy")
	if out := e.ok("metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("metrics with no instance running:\n%s", out)
	}
	e.fails(2, "usage", "metrics", "extra")
}

// countBlockIO makes the kernel count the block I/O of instance name's
// cgroup on its pool's loop device, where it can: cgroup v1's blkio
// counts a device's I/O only while some throttle rule is set on it, here
// one that never throttles.
func countBlockIO(t *testing.T, e *env, name string) {
	t.Helper()
	v1 := "/sys/fs/cgroup/blkio"
	if _, err := os.Stat(v1); err != nil {
		return // cgroup v2's io.stat counts without a rule
	}
	src, err := exec.Command("findmnt", "-n", "-o", "SOURCE", "--target", instanceRoot(t, e, name)).Output()
	if err != nil {
		t.Fatalf("the pool's device: %v", err)
	}
	dev, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(strings.TrimSpace(string(src))), "dev"))
	if err != nil {
		t.Fatalf("the pool's device %s: %v", src, err)
	}
	abs, _ := filepath.Abs(e.state)
	sum := sha256.Sum256([]byte(abs))
	rule := filepath.Join(v1, "silo", hex.EncodeToString(sum[:6]), name, "blkio.throttle.write_bps_device")
	if err := os.WriteFile(rule, []byte(strings.TrimSpace(string(dev))+" 1099511627776"), 0); err != nil {
		t.Fatal(err)
	}
}

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return fams
}
