package container

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
