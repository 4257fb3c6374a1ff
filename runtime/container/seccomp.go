package container

import (
	"runtime"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The seccomp profile is a deny list over a default of allow, as LXD's: a
// whole OS runs what it likes but for the calls below, which reach past
// the container to the host's kernel, its filesystems or its secrets. A
// call refused as a whole answers ENOSYS, as LXD's do, so that software
// falls back as on a kernel without it; a call refused for some arguments
// only answers EPERM, as it would to a caller without the privilege.
//
// It covers every x86 ABI (x86_64, i386, x32) by listing their numbers,
// rather than blocking the 32-bit ones: a 32-bit program in an instance
// keeps working, and cannot get around the list.

// Bits of the arguments the rules match.
const (
	msRemount = 0x20   // MS_REMOUNT
	msBind    = 0x1000 // MS_BIND
	mntForce  = 0x1    // MNT_FORCE
	sIFMT     = 0o170000
	sIFBLK    = 0o060000
	// ioctl requests (from linux/fs.h): freeze and thaw a filesystem, and
	// shut it down (ext4, xfs).
	fiFreeze      = 0xc0045877
	fiThaw        = 0xc0045878
	fsIocShutdown = 0x8004587d
)

// denial is one rule of the profile.
type denial struct {
	name  string
	errno syscall.Errno
	arg   *specs.LinuxSeccompArg // refused only when this argument matches
}

// masked matches argument index when its bits under mask equal value.
func masked(index uint, mask, value uint64) *specs.LinuxSeccompArg {
	return &specs.LinuxSeccompArg{Index: index, Value: mask, ValueTwo: value, Op: specs.OpMaskedEqual}
}

// denials are the rules every instance gets.
var denials = []denial{
	// LXD's list. A file handle opens any inode of a filesystem whatever
	// the path to it: with the handle of the root of the pool's
	// filesystem, the "shocker" escape reads the host's files.
	{name: "open_by_handle_at", errno: syscall.ENOSYS},
	// Replacing or extending the running kernel.
	{name: "kexec_load", errno: syscall.ENOSYS},
	{name: "kexec_file_load", errno: syscall.ENOSYS},
	{name: "init_module", errno: syscall.ENOSYS},
	{name: "finit_module", errno: syscall.ENOSYS},
	{name: "delete_module", errno: syscall.ENOSYS},
	// A forced unmount aborts the requests of every user of a
	// filesystem, the host's too.
	{name: "umount2", errno: syscall.EPERM, arg: masked(1, mntForce, mntForce)},

	// A remount without MS_BIND reconfigures the superblock, which the
	// pool's filesystem shares with the host and every instance on it:
	// "mount -o remount,ro /" would make the whole pool read-only. A bind
	// remount changes the instance's own mount only, and stays allowed.
	{name: "mount", errno: syscall.EPERM, arg: masked(3, msRemount|msBind, msRemount)},
	// fspick opens an existing superblock for reconfiguring it, the new
	// mount API's remount: refused as absent, mount tools fall back to
	// mount(2) and the rule above.
	{name: "fspick", errno: syscall.ENOSYS},
	// Freezing or shutting down a filesystem stops it for the host too.
	// The kernel takes the request as 32 bits: so does the match.
	{name: "ioctl", errno: syscall.EPERM, arg: masked(1, 0xffffffff, fiFreeze)},
	{name: "ioctl", errno: syscall.EPERM, arg: masked(1, 0xffffffff, fiThaw)},
	{name: "ioctl", errno: syscall.EPERM, arg: masked(1, 0xffffffff, fsIocShutdown)},
	// Block device nodes: the device rules already refuse their use, but
	// runc lets any node be made; a whole OS makes none.
	{name: "mknod", errno: syscall.EPERM, arg: masked(1, sIFMT, sIFBLK)},
	{name: "mknodat", errno: syscall.EPERM, arg: masked(2, sIFMT, sIFBLK)},

	// Beyond LXD, as Docker's default profile. With the host's
	// CAP_SYS_ADMIN, BPF programs read kernel memory and trace every
	// process of the host; systemd goes without its BPF features.
	{name: "bpf", errno: syscall.ENOSYS},
	// Performance events see the whole host's CPUs and kernel, not the
	// instance's.
	{name: "perf_event_open", errno: syscall.ENOSYS},
	// userfaultfd stalls the kernel at a chosen page fault, which turns
	// kernel races into reliable exploits; a whole OS boots without it.
	{name: "userfaultfd", errno: syscall.ENOSYS},
	// The kernel's keyrings are not per container: the root of a
	// privileged instance shares the host root's. systemd, the main user,
	// goes without them.
	{name: "add_key", errno: syscall.ENOSYS},
	{name: "request_key", errno: syscall.ENOSYS},
	{name: "keyctl", errno: syscall.ENOSYS},
}

// tunDev is net/tun's device number as mknod takes it (old encoding).
const tunDev = 10<<8 | 200

// seccompProfile is the profile of an instance with the given optional
// devices.
func seccompProfile(d Devices) *specs.LinuxSeccomp {
	rules := denials
	if !d.Tun {
		// runc's device rules allow net/tun always: refusing its node is
		// what keeps it from an instance that did not ask for it.
		rules = append(rules[:len(rules):len(rules)],
			denial{name: "mknod", errno: syscall.EPERM, arg: masked(2, 0xffffffff, tunDev)},
			denial{name: "mknodat", errno: syscall.EPERM, arg: masked(3, 0xffffffff, tunDev)})
	}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: seccompArches()}
	for _, r := range rules {
		errno := uint(r.errno)
		sc := specs.LinuxSyscall{Names: []string{r.name}, Action: specs.ActErrno, ErrnoRet: &errno}
		if r.arg != nil {
			sc.Args = []specs.LinuxSeccompArg{*r.arg}
		}
		p.Syscalls = append(p.Syscalls, sc)
	}
	return p
}

// seccompArches are the ABIs the profile covers: all of the host's.
func seccompArches() []specs.Arch {
	if runtime.GOARCH == "amd64" {
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	}
	return nil // the native one
}

// BundleSeccomp reads the seccomp profile of the bundle in dir, the one
// its init runs under.
func BundleSeccomp(dir string) (*specs.LinuxSeccomp, error) {
	s, err := readBundle(dir)
	if err != nil {
		return nil, err
	}
	if s.Linux == nil {
		return nil, nil
	}
	return s.Linux.Seccomp, nil
}

// explainRefusal names the seccomp profile in a runtime's message about
// it: a runtime built without libseccomp, or with one too old for the
// profile, refuses every instance.
func explainRefusal(msg string) string {
	if strings.Contains(strings.ToLower(msg), "seccomp") {
		return "the runtime refused silo's seccomp profile (use a runtime built with seccomp support): " + msg
	}
	return msg
}
