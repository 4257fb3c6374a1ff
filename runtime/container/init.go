package container

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitKind is the family of an init, which decides how it is asked to stop
// and how its readiness is told.
type InitKind string

const (
	Systemd InitKind = "systemd"
	Busybox InitKind = "busybox"
	// Other covers sysvinit and the rest, which follow LXC's convention.
	Other InitKind = "other"
)

// sigRTMin3 is SIGRTMIN+3, systemd's "halt"; runtimes take it by number.
const sigRTMin3 = syscall.Signal(37)

// StopSignal asks an init of this kind to shut the system down cleanly.
func (k InitKind) StopSignal() syscall.Signal {
	switch k {
	case Systemd:
		return sigRTMin3
	case Busybox:
		return syscall.SIGUSR2 // busybox init's poweroff
	default:
		return syscall.SIGPWR
	}
}

// DetectInit tells what init is the program at path in the root filesystem
// root, following symlinks as the container would see them.
func DetectInit(root, path string) InitKind {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Other
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return Other
	}
	defer unix.Close(fd)
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return Other
	}
	switch filepath.Base(target) {
	case "systemd":
		return Systemd
	case "busybox":
		return Busybox
	}
	return Other
}
