// Package container turns an instance into an OCI bundle for a system
// container and runs it under an OCI runtime (runc by default): start,
// exec, console, stop and live limits. It is handed a mounted root path and
// knows nothing of storage.
package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-dev/silo/internal/idmap"
)

// Config is what the runtime needs to know of an instance to boot it.
type Config struct {
	Name   string   // the hostname
	Root   string   // the mounted root filesystem
	Init   []string // PID 1 and its arguments
	Env    []string // extra environment for init, K=V
	Cgroup string   // cgroup path, absolute
	// Notify is a socket on the host where systemd tells it has booted.
	Notify  string
	Limits  Limits
	Devices Devices // the optional devices it may use
	// NodeDir holds the optional device nodes that MakeNodes made for an
	// unprivileged container.
	NodeDir string
	// Idmap is the user namespace's map; nil runs the container as the
	// host's root (privileged). Root must then be idmapped by it
	// (MountRoot), or shifted on disk and bound as it is (BindRoot).
	Idmap *idmap.Map
	// Nesting lets the container run containers of its own.
	Nesting bool
}

// Limits are the resources an instance may use; zero values mean no limit.
type Limits struct {
	CPUs      string // a CPU set, "0-1,3"
	Memory    int64  // bytes
	Processes int64
}

const (
	// BundleConfig is the bundle's config file, in the run directory.
	BundleConfig = "config.json"
	// NotifyPath is where the notify socket appears in the container.
	NotifyPath = "/run/host/notify"
)

// readBundle reads the OCI config of the bundle in dir.
func readBundle(dir string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(dir, BundleConfig))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", BundleConfig, err)
	}
	return &s, nil
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec builds the OCI config of a system container: init as PID 1 on a
// terminal (the console), its own namespaces, a writable cgroup tree for
// systemd, tmpfs on /run, /run/lock and /tmp, the capabilities a whole
// OS needs, the usual devices and the seccomp profile.
func Spec(c Config) (*specs.Spec, error) {
	caps, err := capabilities()
	if err != nil {
		return nil, err
	}
	env := append(BaseEnv(), c.Env...)
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: c.Name,
		Root:     &specs.Root{Path: c.Root},
		Process: &specs.Process{
			Terminal: true,
			Args:     c.Init,
			Env:      env,
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			// With the cgroup namespace this is the container's own
			// subtree, writable, as systemd needs.
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "rw"}},
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
			{Destination: "/run/lock", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=5m"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			CgroupsPath: c.Cgroup,
			Resources:   c.Limits.resources(),
			MaskedPaths: []string{"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	s.Linux.Seccomp = seccompProfile(c.Devices)
	if c.Idmap == nil {
		s.Linux.Devices = c.Devices.nodes()
	} else {
		s.Mounts = append(s.Mounts, c.Devices.nodeMounts(c.NodeDir)...)
	}
	s.Linux.Resources.Devices = c.Devices.rules()
	if c.Nesting {
		s.Mounts = append(s.Mounts, nestingMounts...)
	}
	if c.Idmap != nil {
		// In a user namespace the kernel itself keeps the host's
		// settings from the instance's root, and leaves it those of its
		// own network namespace (ip_forward, for a silo inside it), as
		// LXD's proc:rw does.
		s.Linux.ReadonlyPaths = slices.DeleteFunc(s.Linux.ReadonlyPaths, func(p string) bool { return p == "/proc/sys" })
	}
	withUserNamespace(s, c.Idmap)
	if c.Notify != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: NotifyPath, Type: "bind", Source: c.Notify, Options: []string{"bind"}})
		s.Process.Env = append(s.Process.Env, "NOTIFY_SOCKET="+NotifyPath)
	}
	return s, nil
}

// nestingMounts are a second proc and sysfs, whole, out of the way, as
// LXD mounts them for security.nesting. In a user namespace the kernel
// mounts a new proc or sysfs (a nested container's) only where one is
// already fully visible in the mount namespace (mount_too_revealing): the
// container's own /proc and /sys are not, with the masked and read-only
// paths over them, once locked by the copy into the nested container's
// user namespace. Those stay where software looks; the second ones show
// root of an unprivileged container what it may see or change anyway, and
// root of a privileged one the host's, which it could mount itself.
var nestingMounts = []specs.Mount{
	{Destination: "/dev/.lxc/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/dev/.lxc/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev"}},
}

func (l Limits) resources() *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if l.CPUs != "" {
		r.CPU = &specs.LinuxCPU{Cpus: l.CPUs}
	}
	if l.Memory > 0 {
		m := l.Memory
		r.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if l.Processes > 0 {
		p := l.Processes
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	return r
}

// capNames are the capabilities by number, as the kernel numbers them.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// withheld are the capabilities a container must not have even as host
// root, as LXD withholds them: loading modules, setting the host's clock,
// the MAC policy, and raw I/O (ports, /dev/mem, raw SCSI commands).
var withheld = map[string]bool{
	"CAP_SYS_MODULE": true, "CAP_SYS_TIME": true, "CAP_MAC_ADMIN": true, "CAP_MAC_OVERRIDE": true,
	"CAP_SYS_RAWIO": true,
}

// capabilities is every capability in this process's bounding set but the
// withheld ones: a runtime refuses a spec asking for one the host lacks.
func capabilities() ([]string, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return nil, fmt.Errorf("capability bounding set: %w", err)
			}
		}
	}
	var caps []string
	for i, name := range capNames {
		if bnd&(1<<i) != 0 && !withheld[name] {
			caps = append(caps, name)
		}
	}
	return caps, nil
}
