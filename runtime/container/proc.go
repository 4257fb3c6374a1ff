package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ProcStart is when process pid started, in clock ticks since boot: with
// the PID it names one process for good, since PIDs are reused.
func ProcStart(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat reads the state and start time of process pid.
func procStat(pid int) (state string, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	// The command name, in parentheses, may hold anything: fields count
	// from after its closing parenthesis, where field 3 (state) begins.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 20 {
		return "", 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0], start, err
}

// Alive says whether the process pid that started at start still runs
// (a zombie counts as gone).
func Alive(pid int, start uint64) bool {
	state, s, err := procStat(pid)
	return err == nil && s == start && state != "Z"
}

// WaitExit waits up to timeout for process pid, which need not be a child,
// to exit, and says whether it did.
func WaitExit(pid int, timeout time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		return pollExit(pid, timeout)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms < 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// A zombie is readable too, and counts as gone.
		return err == nil && n > 0
	}
}

// pollExit is WaitExit for kernels without pidfds.
func pollExit(pid int, timeout time.Duration) bool {
	start, err := ProcStart(pid)
	for deadline := time.Now().Add(timeout); err == nil && Alive(pid, start); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// MemoryUsage is the memory that cgroup (an absolute cgroup path, the
// same in every hierarchy) uses, in bytes: from cgroup v1's memory
// controller, or from cgroup v2.
func MemoryUsage(cgroup string) (int64, error) {
	return cgroupCount(cgroup, "memory", "memory.usage_in_bytes", "memory.current")
}

// Processes counts the processes in cgroup, from the pids controller.
func Processes(cgroup string) (int64, error) {
	return cgroupCount(cgroup, "pids", "pids.current", "pids.current")
}

// cgroupCount reads a number that cgroup v1's controller keeps in file v1,
// or cgroup v2 in file v2.
func cgroupCount(cgroup, controller, v1, v2 string) (int64, error) {
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup", controller, cgroup, v1),
		filepath.Join("/sys/fs/cgroup", cgroup, v2),
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s of cgroup %s: no %s controller found", v2, cgroup, controller)
}
