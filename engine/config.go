package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/snapshot"
)

// Instance config keys. environment.* and user.* are open families.
const (
	KeyCPU       = "limits.cpu"            // a count of CPUs, or a set: "0-1,3"
	KeyMemory    = "limits.memory"         // a size, or a percentage of the host's memory
	KeyProcesses = "limits.processes"      // the most tasks at once
	KeyRuntime   = "runtime"               // the OCI runtime, a name in PATH or a path
	KeyInit      = "init"                  // PID 1 and its arguments
	KeyFuse      = "security.devices.fuse" // /dev/fuse in the instance
	KeyTun       = "security.devices.tun"  // /dev/net/tun in the instance
	KeyNesting   = "security.nesting"      // the instance may run containers of its own
)

// Keys of the background work, as LXD's: snapshot schedules (which custom
// volumes have too, but for .stopped) and the start at the host's boot.
const (
	KeySnapSchedule      = "snapshots.schedule"         // cron specs, or @hourly, @daily...
	KeySnapStopped       = "snapshots.schedule.stopped" // stopped instances get scheduled snapshots too
	KeySnapExpiry        = "snapshots.expiry"           // how long a snapshot is kept: 2w, 1d 3H...
	KeySnapPattern       = "snapshots.pattern"          // names of snapshots taken without one
	KeyAutostart         = "boot.autostart"             // start at the host's boot; unset: if it ran when the host went down
	KeyAutostartPriority = "boot.autostart.priority"    // higher starts first
	KeyAutostartDelay    = "boot.autostart.delay"       // seconds to wait after starting it
)

// boolKeys are the keys that take true or false.
var boolKeys = []string{KeyPrivileged, KeyIsolated, KeyFuse, KeyTun, KeyNesting, KeySnapStopped, KeyAutostart}

// snapshotKeys are the keys of snapshot schedules that instances and
// custom volumes share.
var snapshotKeys = []string{KeySnapSchedule, KeySnapExpiry, KeySnapPattern}

// checkKey checks that key is a config key silo knows.
func checkKey(key string) error {
	switch {
	case strings.HasPrefix(key, "user.") && len(key) > len("user."),
		strings.HasPrefix(key, "environment.") && len(key) > len("environment."),
		key == KeyRuntime, key == KeyInit, key == KeyCPU, key == KeyMemory, key == KeyProcesses,
		slices.Contains(boolKeys, key), key == KeyIdmapSize, key == KeyIdmapBase,
		slices.Contains(snapshotKeys, key), key == KeyAutostartPriority, key == KeyAutostartDelay:
		return nil
	}
	return errkind.Wrap(errkind.Invalid, "unknown config key %q (limits.cpu, limits.memory, limits.processes, runtime, init, %s, %s, %s, %s, %s, %s, environment.*, user.*)",
		key, strings.Join(boolKeys, ", "), KeyIdmapSize, KeyIdmapBase, strings.Join(snapshotKeys, ", "), KeyAutostartPriority, KeyAutostartDelay)
}

// checkSnapshotConfig checks the value of one of snapshotKeys.
func checkSnapshotConfig(key, value string) error {
	var err error
	switch key {
	case KeySnapSchedule:
		_, err = snapshot.ParseSchedule(value)
	case KeySnapExpiry:
		_, err = snapshot.Expiry(value, time.Now())
	case KeySnapPattern:
		err = snapshot.CheckPattern(value, func(name string) error { return checkName("snapshot", name) })
	}
	if err != nil {
		return fmt.Errorf("config %s: %w", key, err)
	}
	return nil
}

// checkConfig checks one config key and its value.
func checkConfig(key, value string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	switch key {
	case KeyRuntime, KeyInit:
		if strings.TrimSpace(value) == "" {
			return errkind.Wrap(errkind.Invalid, "config %s: give a value", key)
		}
	case KeyCPU, KeyMemory, KeyProcesses:
		_, err := limits(map[string]string{key: value})
		return err
	case KeyIdmapSize, KeyIdmapBase:
		if n, err := strconv.ParseUint(value, 10, 32); err != nil || n == 0 {
			return errkind.Wrap(errkind.Invalid, "config %s: %q is not a positive count below 2^32", key, value)
		}
	case KeySnapSchedule, KeySnapExpiry, KeySnapPattern:
		return checkSnapshotConfig(key, value)
	case KeyAutostartPriority:
		if _, err := strconv.Atoi(value); err != nil {
			return errkind.Wrap(errkind.Invalid, "config %s: %q is not a whole number", key, value)
		}
	case KeyAutostartDelay:
		if n, err := strconv.Atoi(value); err != nil || n < 0 {
			return errkind.Wrap(errkind.Invalid, "config %s: %q is not a count of seconds", key, value)
		}
	}
	if slices.Contains(boolKeys, key) && value != "true" && value != "false" {
		return errkind.Wrap(errkind.Invalid, "config %s: %q is neither true nor false", key, value)
	}
	return nil
}

// devices reads the security.devices.* keys of a config.
func devices(cfg map[string]string) container.Devices {
	return container.Devices{Fuse: cfg[KeyFuse] == "true", Tun: cfg[KeyTun] == "true"}
}

func nesting(cfg map[string]string) bool { return cfg[KeyNesting] == "true" }

// ParseConfig reads key=value pairs and checks them.
func ParseConfig(pairs []string) (map[string]string, error) {
	cfg := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, errkind.Wrap(errkind.Invalid, "config %q: write key=value", p)
		}
		if err := checkConfig(k, v); err != nil {
			return nil, err
		}
		cfg[k] = v
	}
	return cfg, nil
}

// CheckKeys checks that keys are config keys silo knows: those a write
// removes, which have no value to check.
func CheckKeys(keys ...string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return nil
}

// CheckConfig checks the keys and values of an instance's own config, as
// a program writes it whole: the volatile.* keys that silo keeps are left
// to silo.
func CheckConfig(cfg map[string]string) error {
	for k, v := range cfg {
		if isVolatile(k) {
			continue
		}
		if err := checkConfig(k, v); err != nil {
			return err
		}
	}
	return nil
}

// limits reads the limits.* keys of a config.
func limits(cfg map[string]string) (container.Limits, error) {
	var l container.Limits
	if v := cfg[KeyCPU]; v != "" {
		cpus, err := cpuSet(v)
		if err != nil {
			return l, err
		}
		l.CPUs = cpus
	}
	if v := cfg[KeyMemory]; v != "" {
		if pct, ok := strings.CutSuffix(v, "%"); ok {
			n, err := strconv.Atoi(pct)
			total := hostMemory()
			if err != nil || n <= 0 || n > 100 || total == 0 {
				return l, errkind.Wrap(errkind.Invalid, "config %s: invalid percentage %q", KeyMemory, v)
			}
			l.Memory = total / 100 * int64(n)
		} else {
			n, err := units.ParseSize(v)
			if err != nil {
				return l, fmt.Errorf("config %s: %w", KeyMemory, err)
			}
			l.Memory = n
		}
	}
	if v := cfg[KeyProcesses]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return l, errkind.Wrap(errkind.Invalid, "config %s: %q is not a positive count", KeyProcesses, v)
		}
		l.Processes = n
	}
	return l, nil
}

// cpuSet turns limits.cpu into a CPU set: a count N means the first N
// online CPUs, as "nproc" inside then shows; a set is checked against the
// online CPUs.
func cpuSet(v string) (string, error) {
	online, err := onlineCPUs()
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > len(online) {
			return "", errkind.Wrap(errkind.Invalid, "config %s: %d CPUs asked, the host has %d", KeyCPU, n, len(online))
		}
		return formatCPUs(online[:n]), nil
	}
	set, err := parseCPUs(v)
	if err != nil {
		return "", errkind.Wrap(errkind.Invalid, "config %s: %q is neither a count nor a CPU set like 0-1,3", KeyCPU, v)
	}
	for _, c := range set {
		if !containsInt(online, c) {
			return "", errkind.Wrap(errkind.Invalid, "config %s: CPU %d is not online", KeyCPU, c)
		}
	}
	return formatCPUs(set), nil
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// onlineCPUs lists the host's online CPUs.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("online CPUs: %w", err)
	}
	return parseCPUs(strings.TrimSpace(string(b)))
}

// parseCPUs reads a CPU list such as "0-3,6".
func parseCPUs(s string) ([]int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if isRange && err == nil {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b > 4095 {
			return nil, fmt.Errorf("invalid CPU list %q", s)
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

func formatCPUs(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// hostMemory is the host's memory in bytes, 0 if unknown.
func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// environment is the environment.* keys of a config, as K=V.
func environment(cfg map[string]string) []string {
	var env []string
	for k, v := range cfg {
		if name, ok := strings.CutPrefix(k, "environment."); ok {
			env = append(env, name+"="+v)
		}
	}
	sort.Strings(env)
	return env
}

// applyLimits changes the limits of a running instance.
func (e *Engine) applyLimits(ctx context.Context, run *store.Run, l container.Limits) error {
	all, err := onlineCPUs()
	if err != nil {
		return err
	}
	return e.oci(run.Runtime).Update(ctx, run.Name, run.Pid, l, formatCPUs(all))
}
