package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The profile as runc reads it: a default of allow, the x86 ABIs, LXD's
// refusals with ENOSYS and the argument matches with EPERM.
func TestSeccompProfileJSON(t *testing.T) {
	data, err := json.Marshal(seccompProfile(Devices{}))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		DefaultAction string
		Architectures []string
		Syscalls      []struct {
			Names    []string
			Action   string
			ErrnoRet *uint
			Args     []struct {
				Index, Value, ValueTwo uint64
				Op                     string
			}
		}
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ALLOW" {
		t.Fatalf("default action %s", p.DefaultAction)
	}
	if runtime.GOARCH == "amd64" && strings.Join(p.Architectures, ",") != "SCMP_ARCH_X86_64,SCMP_ARCH_X86,SCMP_ARCH_X32" {
		t.Fatalf("architectures %v", p.Architectures)
	}
	whole := map[string]uint{}
	args := map[string][]string{}
	for _, sc := range p.Syscalls {
		if len(sc.Names) != 1 || sc.Action != "SCMP_ACT_ERRNO" || sc.ErrnoRet == nil {
			t.Fatalf("rule %+v", sc)
		}
		if len(sc.Args) == 0 {
			whole[sc.Names[0]] = *sc.ErrnoRet
			continue
		}
		if *sc.ErrnoRet != uint(syscall.EPERM) || len(sc.Args) != 1 || sc.Args[0].Op != "SCMP_CMP_MASKED_EQ" {
			t.Fatalf("argument rule %+v", sc)
		}
		a := sc.Args[0]
		args[sc.Names[0]] = append(args[sc.Names[0]], fmt.Sprintf("%d:%#x=%#x", a.Index, a.Value, a.ValueTwo))
	}
	for _, name := range []string{"open_by_handle_at", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module"} {
		if whole[name] != uint(syscall.ENOSYS) {
			t.Errorf("%s: errno %d, want ENOSYS", name, whole[name])
		}
	}
	want := map[string]string{
		"umount2": "1:0x1=0x1",     // MNT_FORCE
		"mount":   "3:0x1020=0x20", // MS_REMOUNT without MS_BIND
		"mknod":   "1:0xf000=0x6000 2:0xffffffff=0xac8",
		"mknodat": "2:0xf000=0x6000 3:0xffffffff=0xac8",
		"ioctl":   "1:0xffffffff=0xc0045877 1:0xffffffff=0xc0045878 1:0xffffffff=0x8004587d",
	}
	for name, w := range want {
		if got := strings.Join(args[name], " "); got != w {
			t.Errorf("%s: argument rules %q, want %q", name, got, w)
		}
	}
	// Asking for net/tun lifts the rules on its node, and those only.
	tun := seccompProfile(Devices{Tun: true})
	if n := len(p.Syscalls) - len(tun.Syscalls); n != 2 {
		t.Fatalf("net/tun lifts %d rules, want 2", n)
	}
}

// Every call the profile names has a number on every ABI it lists, or
// none on that ABI at all.
func TestSeccompNamesKnown(t *testing.T) {
	for _, d := range []Devices{{}, {Tun: true}} {
		if _, err := compileSeccomp(seccompProfile(d)); err != nil {
			t.Fatal(err)
		}
	}
	if runtime.GOARCH != "amd64" {
		return
	}
	// The x86_64 column against the system's own numbers.
	for name, want := range map[string]int{
		"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT, "kexec_load": unix.SYS_KEXEC_LOAD,
		"kexec_file_load": unix.SYS_KEXEC_FILE_LOAD, "init_module": unix.SYS_INIT_MODULE,
		"finit_module": unix.SYS_FINIT_MODULE, "delete_module": unix.SYS_DELETE_MODULE,
		"umount2": unix.SYS_UMOUNT2, "mount": unix.SYS_MOUNT, "fspick": unix.SYS_FSPICK,
		"ioctl": unix.SYS_IOCTL, "mknod": unix.SYS_MKNOD, "mknodat": unix.SYS_MKNODAT,
		"bpf": unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN,
		"userfaultfd": unix.SYS_USERFAULTFD, "add_key": unix.SYS_ADD_KEY,
		"request_key": unix.SYS_REQUEST_KEY, "keyctl": unix.SYS_KEYCTL,
	} {
		if got := syscallNumbers[name][0]; got != want {
			t.Errorf("%s: %d, want %d", name, got, want)
		}
	}
	if len(syscallNumbers) != 18 {
		t.Errorf("%d numbers known; the cross-check above covers 18", len(syscallNumbers))
	}
}

// runFilter runs a seccomp program over one call, as the kernel would,
// for the instructions compileSeccomp emits.
func runFilter(t *testing.T, prog []unix.SockFilter, arch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[offNr:], uint32(nr))
	binary.LittleEndian.PutUint32(data[offArch:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArgs+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			match := acc == in.K
			if in.Code&0xf0 == unix.BPF_JSET {
				match = acc&in.K != 0
			}
			if match {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: code %#x not interpreted", pc, in.Code)
		}
	}
	t.Fatal("the program ran off its end")
	return 0
}

// The compiled program refuses what the profile says on each x86 ABI, and
// allows the rest.
func TestSeccompProgram(t *testing.T) {
	const (
		allow = unix.SECCOMP_RET_ALLOW
		eperm = unix.SECCOMP_RET_ERRNO | uint32(syscall.EPERM)
		enosy = unix.SECCOMP_RET_ERRNO | uint32(syscall.ENOSYS)
		kill  = unix.SECCOMP_RET_KILL_PROCESS
		x64   = unix.AUDIT_ARCH_X86_64
		i386  = unix.AUDIT_ARCH_I386
	)
	blk, chr := uint64(sIFBLK|0o600), uint64(0o020000|0o600)
	cases := []struct {
		what string
		tun  bool
		arch uint32
		nr   int
		args []uint64
		want uint32
	}{
		{"read", false, x64, 0, nil, allow},
		{"open_by_handle_at", false, x64, 304, nil, enosy},
		{"open_by_handle_at, i386", false, i386, 342, nil, enosy},
		{"open_by_handle_at, x32", false, x64, 304 | x32Bit, nil, enosy},
		{"kexec_load, x32", false, x64, 528 | x32Bit, nil, enosy},
		{"finit_module", false, x64, 313, nil, enosy},
		{"keyctl, i386", false, i386, 288, nil, enosy},
		{"umount2 MNT_FORCE", false, x64, 166, []uint64{0, 1}, eperm},
		{"umount2 MNT_FORCE|MNT_DETACH, i386", false, i386, 52, []uint64{0, 3}, eperm},
		{"umount2 MNT_DETACH", false, x64, 166, []uint64{0, 2}, allow},
		{"remount ro", false, x64, 165, []uint64{0, 0, 0, msRemount | 1}, eperm},
		{"remount ro, old magic", false, x64, 165, []uint64{0, 0, 0, 0xc0ed0000 | msRemount | 1}, eperm},
		{"remount ro, i386", false, i386, 21, []uint64{0, 0, 0, msRemount | 1}, eperm},
		{"bind remount ro", false, x64, 165, []uint64{0, 0, 0, msRemount | msBind | 1}, allow},
		{"mount tmpfs", false, x64, 165, []uint64{0, 0, 0, 0}, allow},
		{"fspick", false, x64, 433, nil, enosy},
		{"FIFREEZE", false, x64, 16, []uint64{3, fiFreeze}, eperm},
		{"FIFREEZE sign-extended", false, x64, 16, []uint64{3, 0xffffffff00000000 | fiFreeze}, eperm},
		{"FIFREEZE, x32", false, x64, 514 | x32Bit, []uint64{3, fiFreeze}, eperm},
		{"FS_IOC_SHUTDOWN, i386", false, i386, 54, []uint64{3, fsIocShutdown}, eperm},
		{"TCGETS", false, x64, 16, []uint64{0, unix.TCGETS}, allow},
		{"mknod b", false, x64, 133, []uint64{0, blk, 0x800}, eperm},
		{"mknodat b, i386", false, i386, 297, []uint64{0, 0, blk, 0x800}, eperm},
		{"mknod c 1:3", false, x64, 133, []uint64{0, chr, 1<<8 | 3}, allow},
		{"mknod c 10:200", false, x64, 133, []uint64{0, chr, tunDev}, eperm},
		{"mknodat c 10:200", false, x64, 259, []uint64{0, 0, chr, tunDev}, eperm},
		{"mknod c 10:200 with tun", true, x64, 133, []uint64{0, chr, tunDev}, allow},
		{"mknod b with tun", true, x64, 133, []uint64{0, blk, tunDev}, eperm},
		{"aarch64", false, unix.AUDIT_ARCH_AARCH64, 0, nil, kill},
	}
	progs := map[bool][]unix.SockFilter{}
	for _, tun := range []bool{false, true} {
		p, err := compileSeccomp(seccompProfile(Devices{Tun: tun}))
		if err != nil {
			t.Fatal(err)
		}
		progs[tun] = p
	}
	for _, c := range cases {
		if got := runFilter(t, progs[c.tun], c.arch, c.nr, c.args...); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.what, got, c.want)
		}
	}
}

// The compiler refuses what it cannot express rather than compile it
// loosely.
func TestSeccompCompileRefuses(t *testing.T) {
	errno := uint(1)
	for _, p := range []*specs.LinuxSeccomp{
		{DefaultAction: specs.ActErrno},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"chroot"}, Action: specs.ActErrno, ErrnoRet: &errno}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActKill}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: &errno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 5, Op: specs.OpEqualTo}}}}},
	} {
		if _, err := compileSeccomp(p); err == nil {
			t.Errorf("%+v compiled", p)
		}
	}
}

// The program as the kernel runs it: a child loads it and makes the
// refused calls, with arguments that would make them fail otherwise for another reason.
func TestSeccompKernel(t *testing.T) {
	if os.Getenv("SILO_SECCOMP_CHILD") == "1" {
		seccompChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompKernel$")
	cmd.Env = append(os.Environ(), "SILO_SECCOMP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := "open_by_handle_at: function not implemented\n" +
		"umount2 MNT_FORCE: operation not permitted\n" +
		"umount2: no such file or directory\n" +
		"remount: operation not permitted\n" +
		"bind remount: no such file or directory\n" +
		"mknod b: operation not permitted\n" +
		"FIFREEZE: operation not permitted\n" +
		"TCGETS: bad file descriptor\n"
	if string(out) != want {
		t.Fatalf("child says\n%s\nwant\n%s", out, want)
	}
}

func seccompChild() {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs:", err)
		os.Exit(1)
	}
	if err := loadSeccomp(seccompProfile(Devices{})); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	missing, _ := unix.BytePtrFromString("/nonexistent-silo-test")
	p := uintptr(unsafe.Pointer(missing))
	for _, c := range []struct {
		what string
		nr   uintptr
		args [3]uintptr
		flag uintptr // the fourth argument
	}{
		{"open_by_handle_at", unix.SYS_OPEN_BY_HANDLE_AT, [3]uintptr{^uintptr(0), 0, 0}, 0},
		{"umount2 MNT_FORCE", unix.SYS_UMOUNT2, [3]uintptr{p, unix.MNT_FORCE}, 0},
		{"umount2", unix.SYS_UMOUNT2, [3]uintptr{p, 0}, 0},
		{"remount", unix.SYS_MOUNT, [3]uintptr{0, p, 0}, unix.MS_REMOUNT | unix.MS_RDONLY},
		{"bind remount", unix.SYS_MOUNT, [3]uintptr{0, p, 0}, unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY},
		{"mknod b", unix.SYS_MKNOD, [3]uintptr{p, sIFBLK | 0o600, 0x800}, 0},
		{"FIFREEZE", unix.SYS_IOCTL, [3]uintptr{^uintptr(0), fiFreeze}, 0},
		{"TCGETS", unix.SYS_IOCTL, [3]uintptr{^uintptr(0), unix.TCGETS}, 0},
	} {
		_, _, errno := unix.RawSyscall6(c.nr, c.args[0], c.args[1], c.args[2], c.flag, 0, 0)
		err := error(errno)
		if errno == 0 {
			err = errors.New("allowed")
		}
		fmt.Printf("%s: %v\n", c.what, err)
	}
	os.Exit(0)
}
