package container

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/idmap"
)

// Devices are the optional devices an instance may use, beside the usual
// ones every instance has.
type Devices struct {
	Fuse bool // /dev/fuse, for FUSE filesystems
	Tun  bool // /dev/net/tun, for TUN and TAP interfaces
}

func charRule(major, minor int64) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
}

// usualDevices are the character devices every instance may use: null,
// zero, full, random, urandom, tty and ptmx. The terminals of devpts
// (136:*), the console among them, are added by the runtime. The host's
// console (5:1) is not one of them: the instance's /dev/console is a
// terminal of its devpts.
var usualDevices = [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}}

var (
	fuseDevice = specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}
	tunDevice  = specs.LinuxDevice{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200}
)

// rules are the device cgroup rules: none allowed but the listed ones.
// runc appends its own, which allow making nodes of any kind ("m") and
// using the usual devices, devpts and net/tun; the seccomp profile
// refuses the nodes it must not make.
func (d Devices) rules() []specs.LinuxDeviceCgroup {
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, dev := range usualDevices {
		rules = append(rules, charRule(dev[0], dev[1]))
	}
	for _, dev := range d.nodes() {
		rules = append(rules, charRule(dev.Major, dev.Minor))
	}
	return rules
}

// nodes are the optional devices asked for, which the runtime makes in
// the container's /dev.
func (d Devices) nodes() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	for _, dev := range []struct {
		want bool
		node specs.LinuxDevice
	}{{d.Fuse, fuseDevice}, {d.Tun, tunDevice}} {
		if dev.want {
			n := dev.node
			mode := os.FileMode(0o666)
			uid, gid := uint32(0), uint32(0)
			n.FileMode, n.UID, n.GID = &mode, &uid, &gid
			out = append(out, n)
		}
	}
	return out
}

// MakeNodes makes, in dir, the optional device nodes asked for, for an
// unprivileged container (m set), owned by its root. A runtime cannot
// make nodes in a user namespace, and binds the host's instead, whose
// modes are the host's (0600 where no udev opened them up), so that root
// inside could not open them; and a node that the container's user
// namespace made would be of no use (its filesystem is nodev). These are
// the host's root's nodes, on the host's /run, bound in by Spec.
func (d Devices) MakeNodes(dir string, m *idmap.Map) error {
	nodes := d.nodes()
	if m == nil || len(nodes) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	for _, n := range nodes {
		p := filepath.Join(dir, filepath.Base(n.Path))
		dev := unix.Mkdev(uint32(n.Major), uint32(n.Minor))
		if err := unix.Mknod(p, unix.S_IFCHR|uint32(*n.FileMode), int(dev)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("make %s for the instance: %w", n.Path, err)
		}
		// Mknod's mode is cut by the umask.
		if err := os.Chmod(p, *n.FileMode); err != nil {
			return err
		}
		if err := os.Lchown(p, int(m.UID), int(m.GID)); err != nil {
			return err
		}
	}
	return nil
}

// nodeMounts binds the nodes MakeNodes made in dir into the container.
func (d Devices) nodeMounts(dir string) []specs.Mount {
	var out []specs.Mount
	for _, n := range d.nodes() {
		out = append(out, specs.Mount{Destination: n.Path, Type: "bind",
			Source: filepath.Join(dir, filepath.Base(n.Path)), Options: []string{"bind"}})
	}
	return out
}
