package container

import (
	"golang.org/x/sys/unix"
)

// The majors of the terminals that devpts hands out, the ends that
// processes read and write: ptySlaveMajors of them from
// UNIX98_PTY_SLAVE_MAJOR.
const ptySlaveMajor, ptySlaveMajors = 136, 8

// ResizeConsole sets the window size of the console of the container
// whose init is pid; the console's foreground job is told (SIGWINCH).
// The console's master is held by the process that keeps the container;
// the size belongs to the terminal, which either end sets, so it is set
// through the other end, which the runtime mounts on the container's
// /dev/console.
func ResizeConsole(pid, width, height int) error {
	fd, err := openDevpts(pid, "dev/console", "a devpts terminal", func(rdev uint64) bool {
		major := unix.Major(rdev)
		return major >= ptySlaveMajor && major < ptySlaveMajor+ptySlaveMajors
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
}
