package container

import (
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A process that exec enters the container with never passes through the
// runtime, which loads the profile into init only: exec loads the same
// profile itself, compiled here into classic BPF for the x86 ABIs. It
// compiles what silo's profiles use (a default of allow, ERRNO rules,
// masked matches on the low 32 bits of an argument) and refuses the rest.

// syscallNumbers are the numbers of the calls a profile may name, by ABI:
// x86_64, x32 (without the x32 bit) and i386; -1 where an ABI lacks one.
var syscallNumbers = map[string][3]int{
	"open_by_handle_at": {304, 304, 342},
	"kexec_load":        {246, 528, 283},
	"kexec_file_load":   {320, 320, -1},
	"init_module":       {175, 175, 128},
	"finit_module":      {313, 313, 350},
	"delete_module":     {176, 176, 129},
	"umount2":           {166, 166, 52},
	"mount":             {165, 165, 21},
	"fspick":            {433, 433, 433},
	"ioctl":             {16, 514, 54},
	"mknod":             {133, 133, 14},
	"mknodat":           {259, 259, 297},
	"bpf":               {321, 321, 357},
	"perf_event_open":   {298, 298, 336},
	"userfaultfd":       {323, 323, 374},
	"add_key":           {248, 248, 286},
	"request_key":       {249, 249, 287},
	"keyctl":            {250, 250, 288},
}

const (
	x32Bit = 0x40000000
	// Offsets in struct seccomp_data.
	offNr   = 0
	offArch = 4
	offArgs = 16 // 8 bytes each, the low half first
)

// abis are the ABIs in the order of syscallNumbers' columns.
var abis = []struct {
	arch  specs.Arch
	audit uint32
}{{specs.ArchX86_64, unix.AUDIT_ARCH_X86_64}, {specs.ArchX32, unix.AUDIT_ARCH_X86_64}, {specs.ArchX86, unix.AUDIT_ARCH_I386}}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jeq(k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
}

// compileSeccomp turns a profile into a filter program. A call on an ABI
// the profile does not list is killed, as runc's filter does.
func compileSeccomp(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if p.DefaultAction != specs.ActAllow {
		return nil, fmt.Errorf("seccomp default action %s: only %s compiles", p.DefaultAction, specs.ActAllow)
	}
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp for exec: only x86_64 hosts are known")
	}
	arches := p.Architectures
	if len(arches) == 0 {
		arches = []specs.Arch{specs.ArchX86_64} // the native one alone
	}
	listed := map[specs.Arch]bool{}
	for _, a := range arches {
		listed[a] = true
	}
	// Each ABI's rules, then ALLOW.
	blocks := make([][]unix.SockFilter, len(abis))
	for i, abi := range abis {
		if !listed[abi.arch] {
			blocks[i] = []unix.SockFilter{stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS)}
			continue
		}
		b := []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)}
		for _, sc := range p.Syscalls {
			rules, err := compileRule(sc, i)
			if err != nil {
				return nil, err
			}
			b = append(b, rules...)
		}
		blocks[i] = append(b, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	}
	x64, x32, i386 := blocks[0], blocks[1], blocks[2]
	ld := func(off uint32) unix.SockFilter { return stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
	ja := func(k int) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(k)} }
	// The dispatch on the ABI: x86_64 and x32 share an audit arch, and
	// x32 sets a bit of the number. A jump counts from the next
	// instruction; JA reaches past the 255 that a conditional one can.
	//
	//	0 ld arch; 1 jeq x86_64; 2 ja L64; 3 jeq i386; 4 ja L32; 5 kill
	//	L64: ld nr; jset x32 bit; ja LX32; x86_64 rules
	//	LX32: x32 rules
	//	L32: i386 rules
	const l64 = 6
	lx32 := l64 + 3 + len(x64)
	l32 := lx32 + len(x32)
	prog := []unix.SockFilter{
		ld(offArch),
		jeq(unix.AUDIT_ARCH_X86_64, 0, 1),
		ja(l64 - 3),
		jeq(unix.AUDIT_ARCH_I386, 0, 1),
		ja(l32 - 5),
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS),
		ld(offNr),
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: x32Bit, Jt: 0, Jf: 1},
		ja(lx32 - (l64 + 3)),
	}
	prog = append(prog, x64...)
	prog = append(prog, x32...)
	prog = append(prog, i386...)
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp program of %d instructions is too long", len(prog))
	}
	return prog, nil
}

// compileRule is one rule of the profile for ABI column abi: when the
// call's number and arguments match, return the rule's errno; otherwise
// fall through with the number loaded.
func compileRule(sc specs.LinuxSyscall, abi int) ([]unix.SockFilter, error) {
	if sc.Action != specs.ActErrno || sc.ErrnoRet == nil {
		return nil, fmt.Errorf("seccomp action %s: only %s with an errno compiles", sc.Action, specs.ActErrno)
	}
	ret := stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(*sc.ErrnoRet&unix.SECCOMP_RET_DATA))
	seen := map[uint]bool{}
	var conds []unix.SockFilter
	for _, a := range sc.Args {
		if a.Op != specs.OpMaskedEqual || a.Value > 0xffffffff || a.ValueTwo > 0xffffffff || seen[a.Index] || a.Index > 5 {
			return nil, fmt.Errorf("seccomp argument %+v of %v: only one masked match per argument, on its low 32 bits, compiles", a, sc.Names)
		}
		seen[a.Index] = true
		conds = append(conds,
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, uint32(offArgs+8*a.Index)),
			stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, uint32(a.Value)),
			jeq(uint32(a.ValueTwo), 0, 0)) // Jf set below
	}
	var out []unix.SockFilter
	for _, name := range sc.Names {
		nums, ok := syscallNumbers[name]
		if !ok {
			return nil, fmt.Errorf("seccomp: no number known for %s", name)
		}
		nr := nums[abi]
		if nr < 0 {
			continue
		}
		if abi == 1 {
			nr |= x32Bit
		}
		// [jeq nr] [conds...] [ret] [ld nr]: a mismatch jumps to the reload.
		block := append([]unix.SockFilter{jeq(uint32(nr), 0, uint8(len(conds)+1))}, conds...)
		for i := 3; i < len(block); i += 3 {
			block[i].Jf = uint8(len(block) - i)
		}
		out = append(out, append(block, ret, stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr))...)
	}
	return out, nil
}

// loadSeccomp compiles p and loads it on the calling thread, whose
// children inherit it: a thread locked to its goroutine.
func loadSeccomp(p *specs.LinuxSeccomp) error {
	prog, err := compileSeccomp(p)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// Without TSYNC the filter binds this thread alone.
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("load the seccomp profile: %w", errno)
	}
	return nil
}
