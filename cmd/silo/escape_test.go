package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/testutil"
)

// buildEscape builds testdata/escape, static, for pushing into instances.
func buildEscape(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "escape")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/escape")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/escape: %v\n%s", err, out)
	}
	return bin
}

// escapeModes are the instances the escapes are tried from. hostRoot says
// that root inside is the host's root, on the host's kernel.
var escapeModes = []struct {
	name, config string
	hostRoot     bool
}{
	{"default", "", false},
	{"privileged", "security.privileged=true", true},
	// Root inside is root of gVisor's kernel: each case must be refused
	// there too, those that mean nothing under it (a host PID it cannot
	// see, a /proc/kcore it does not have) included.
	{"gvisor", "runtime=runsc", false}, // launched with --no-network: gVisor has loopback only here
}

// Each known way out of an instance (see testdata/escape) is tried from inside a
// default, a privileged and a gVisor instance on every driver, and the
// host is checked afterwards: every one must fail.
func TestEscape(t *testing.T) {
	testutil.NeedCommand(t, "runsc")
	helper := buildEscape(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			exposeState(t, e)
			for _, mode := range escapeModes {
				t.Run(mode.name, func(t *testing.T) {
					sub := *e
					sub.t = t
					name := "esc-" + mode.name
					var extra []string
					if mode.config != "" {
						extra = []string{"-c", mode.config}
					}
					if mode.name == "gvisor" {
						extra = append(extra, "--no-network")
					}
					sub.launch("bb", name, extra...)
					sub.ok("file", "push", "--mode", "0755", helper, name+"/bin/escape")
					escapeCases(t, &sub, name, mode.hostRoot)
				})
			}
		})
	}
}

// exposeState opens the directories above the state directory to every
// user, as /var/lib is: only the modes silo gives its own directories may
// keep the pools closed.
func exposeState(t *testing.T, e *env) {
	t.Helper()
	for dir := e.state; dir != filepath.Clean(os.TempDir()) && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// escape runs the helper in instance name with args, and fails the test
// if it got out.
func escape(t *testing.T, e *env, name string, args ...string) {
	t.Helper()
	r := e.run(append([]string{"exec", name, "--", "/bin/escape"}, args...)...)
	t.Logf("escape %s: %s", strings.Join(args, " "), strings.TrimSpace(r.out+r.err))
	if r.code != 0 || strings.Contains(r.out, "ESCAPED") {
		t.Errorf("escape %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
}

func escapeCases(t *testing.T, e *env, name string, hostRoot bool) {
	root := instanceRoot(t, e, name)

	// open_by_handle_at with the handle of the root of the pool's
	// filesystem, made on the host.
	typ, handle := rootHandle(t, root)
	escape(t, e, name, "handle", fmt.Sprint(typ), hex.EncodeToString(handle))

	// The host's root disk: a node made for it, and the one devtmpfs has.
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	escape(t, e, name, "mknod", fmt.Sprint(major), fmt.Sprint(minor))
	escape(t, e, name, "devtmpfs", blockDevName(t, major, minor))

	// A superblock remount read-only of the pool, and a freeze of it.
	escape(t, e, name, "remount")
	var sfs unix.Statfs_t
	if err := unix.Statfs(root, &sfs); err != nil || sfs.Flags&unix.ST_RDONLY != 0 {
		t.Fatalf("the pool's filesystem is read-only for the host (statfs %v)", err)
	}
	probe := filepath.Join(root, "escape-host-write")
	if err := os.WriteFile(probe, []byte("x"), 0o600); err != nil {
		t.Fatalf("the host cannot write to the pool: %v", err)
	}
	os.Remove(probe)

	// Host-wide settings in /proc/sys and /sys, and the magic SysRq key.
	// The root of a privileged instance is the host's root: it may mount
	// a fresh proc, without the read-only /proc/sys (busybox's rcS does),
	// and write there; only a user namespace stops that.
	settings := [][2]string{{"/sys/kernel/mm/transparent_hugepage/enabled", "never"}}
	if !hostRoot {
		settings = append(settings, [2]string{"/proc/sys/kernel/core_pattern", "|/bin/escape"})
	}
	for _, w := range settings {
		before, err := os.ReadFile(w[0])
		if err != nil {
			t.Fatal(err)
		}
		escape(t, e, name, "write", w[0], w[1])
		if after, _ := os.ReadFile(w[0]); string(after) != string(before) {
			_ = os.WriteFile(w[0], before, 0)
			t.Errorf("%s changed on the host: %q, was %q", w[0], after, before)
		}
	}
	escape(t, e, name, "write", "/proc/sysrq-trigger", "h")

	// Kernel modules.
	modules, _ := os.ReadFile("/proc/modules")
	escape(t, e, name, "module")
	if after, _ := os.ReadFile("/proc/modules"); string(after) != string(modules) {
		t.Fatalf("the host's modules changed:\n%s", after)
	}

	// Kernel memory, and the SysRq key read.
	escape(t, e, name, "read", "/proc/kcore")
	escape(t, e, name, "read", "/proc/sysrq-trigger")

	// A process of the host.
	marker := "silo-escape-" + name
	host := exec.Command("sleep", "300")
	host.Args[0] = marker
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.Process.Kill(); _ = host.Wait() }()
	escape(t, e, name, "ptrace", fmt.Sprint(host.Process.Pid), marker)
	if status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", host.Process.Pid)); !strings.Contains(string(status), "TracerPid:\t0\n") {
		t.Fatalf("the host's process is traced:\n%s", status)
	}

	// A setuid-root program made inside, run by an ordinary user of the
	// host through the pool's directories.
	e.ok("exec", name, "--", "sh", "-c", "cp /bin/busybox /root/suid && chmod 4755 /root/suid")
	suid := filepath.Join(root, "root", "suid")
	if st, err := os.Stat(suid); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("no setuid program at %s: %v", suid, err)
	}
	nobody := exec.Command(suid, "id", "-u")
	nobody.Args[0] = "busybox"
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := nobody.CombinedOutput()
	t.Logf("setuid program run by nobody: %v: %s", err, out)
	if err == nil {
		t.Fatalf("an ordinary host user ran %s: it printed %q", suid, out)
	}

	// Symlinks made inside that point at the host's files, followed by
	// file push and pull.
	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	climb := strings.Repeat("../", 20)
	e.ok("exec", name, "--", "sh", "-c", fmt.Sprintf("ln -sf %s /root/leak-file && ln -sfn %s /root/leak-dir && ln -sf %s%s /root/leak-climb",
		secret, hostDir, climb, secret))
	pulled := filepath.Join(t.TempDir(), "pulled")
	for _, p := range []string{"/root/leak-file", "/root/leak-dir/secret", "/root/leak-climb"} {
		r := e.run("file", "pull", name+p, pulled)
		if got, _ := os.ReadFile(pulled); r.code == 0 || strings.Contains(string(got), "host secret") {
			t.Fatalf("file pull %s: exit %d, pulled %q", p, r.code, got)
		}
	}
	local := filepath.Join(t.TempDir(), "local")
	if err := os.WriteFile(local, []byte("from the instance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/root/leak-file", "/root/leak-dir/pushed", "/root/leak-climb"} {
		e.run("file", "push", local, name+p)
	}
	if got, _ := os.ReadFile(secret); string(got) != "host secret\n" {
		t.Fatalf("file push wrote through a symlink to the host: %q", got)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "pushed")); err == nil {
		t.Fatal("file push made a file in a host directory")
	}
}

// rootHandle is a file handle of the root of the filesystem that holds
// path, made on the host; where that filesystem makes none (FUSE without
// export support), the host's root filesystem's.
func rootHandle(t *testing.T, path string) (int32, []byte) {
	t.Helper()
	mnt := mountPoint(t, path)
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, mnt, 0)
	if err != nil {
		t.Logf("no file handle for %s (%v): the host's root filesystem's instead", mnt, err)
		if h, _, err = unix.NameToHandleAt(unix.AT_FDCWD, "/", 0); err != nil {
			t.Fatal(err)
		}
	}
	return h.Type(), h.Bytes()
}

// mountPoint is the mount point of the filesystem that holds path.
func mountPoint(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	best := "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mnt := fields[4]
		if (path == mnt || strings.HasPrefix(path, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) > len(best) {
			best = mnt
		}
	}
	return best
}

// blockDevName is the name of block device major:minor in /dev.
func blockDevName(t *testing.T, major, minor uint32) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", major, minor))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return v
		}
	}
	t.Fatalf("no DEVNAME for block device %d:%d", major, minor)
	return ""
}

// A runtime that refuses the seccomp profile, as runc built without
// libseccomp does, fails the start with one line that names the profile,
// and leaves the instance stopped with nothing of the run behind: the
// runtime that can then starts it.
func TestSeccompRefused(t *testing.T) {
	e := bootEnv(t, "dir")
	fake := filepath.Join(t.TempDir(), "runc-without-seccomp")
	script := `#!/bin/sh
for a; do
	if [ "$a" = create ]; then
		echo '{"level":"error","msg":"runc create failed: unable to start container process: unable to init seccomp: seccomp: config provided but seccomp not supported","time":"2024-01-01T00:00:00Z"}' >&2
		exit 1
	fi
done
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("create", "bb", "a", "-c", "runtime="+fake)
	for _, cmd := range [][]string{{"start", "a"}, {"restart", "a"}} {
		e.fails(1, "the runtime refused silo's seccomp profile", cmd...)
		if st := e.status("a"); st.State != "stopped" {
			t.Fatalf("after %s: %+v", cmd[0], st)
		}
	}
	sum := sha256.Sum256([]byte(e.state))
	if _, err := os.Stat(filepath.Join("/run/silo", hex.EncodeToString(sum[:6]), "a")); !os.IsNotExist(err) {
		t.Fatalf("the failed start left its run directory: %v", err)
	}
	e.consistent()
	e.ok("config", "unset", "a", "runtime")
	e.ok("start", "a")
	e.ok("exec", "a", "--", "true")
}

// The usual devices work in every instance; fuse and net/tun only where
// the config asks for them, and then their nodes are in /dev.
func TestDevices(t *testing.T) {
	e := bootEnv(t, "dir")
	e.fails(2, "neither true nor false", "create", "bb", "bad", "-c", "security.devices.fuse=yes")
	e.launch("bb", "plain")
	e.launch("bb", "asked", "-c", "security.devices.fuse=true", "-c", "security.devices.tun=true")
	for _, name := range []string{"plain", "asked"} {
		e.ok("exec", name, "--", "sh", "-c", "head -c 16 /dev/urandom >/dev/null && echo x >/dev/null && : </dev/zero")
	}
	// In /dev, which is not mounted nodev as /tmp is.
	for _, c := range []string{
		"test -e /dev/fuse",
		"test -e /dev/net/tun",
		"mknod /dev/test-fuse c 10 229 && exec 3<>/dev/test-fuse",
		"mknod /dev/test-tun c 10 200",
		"mknod /dev/test-mem c 1 1 && exec 3</dev/test-mem",
	} {
		if r := e.run("exec", "plain", "--", "sh", "-c", c); r.code == 0 {
			t.Errorf("%s: works in an instance that did not ask", c)
		}
	}
	e.ok("exec", "asked", "--", "sh", "-c", "test -c /dev/fuse && test -c /dev/net/tun && exec 3<>/dev/fuse 4<>/dev/net/tun")
	// A privileged instance that asked may make the node itself; in a user
	// namespace no one may make a device node.
	e.launch("bb", "asked-privileged", "-c", "security.privileged=true", "-c", "security.devices.tun=true")
	e.ok("exec", "asked-privileged", "--", "mknod", "/dev/test-tun", "c", "10", "200")
}

// The readiness probe behind --wait and silo wait runs a binary of the
// instance's (true, or systemctl), which the instance may have replaced:
// it must run with the container's bounding set and seccomp filter, as
// exec does, and not with silo's own.
func TestProbeRunsConfined(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a", "-c", "security.privileged=true")
	e.ok("exec", "a", "--", "sh", "-c",
		`rm /bin/true && printf '#!/bin/sh\ngrep -E "^(CapBnd|Seccomp):" /proc/self/status > /probed\n' > /bin/true && chmod 755 /bin/true`)
	e.ok("wait", "a")
	status := e.ok("file", "pull", "a/probed", "-")
	var bnd uint64
	var seccomp string
	for _, line := range strings.Split(strings.TrimSpace(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "CapBnd":
			bnd, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		case "Seccomp":
			seccomp = strings.TrimSpace(v)
		}
	}
	const sysModule, sysRawio = 16, 17
	if bnd == 0 || bnd&(1<<sysModule) != 0 || bnd&(1<<sysRawio) != 0 {
		t.Errorf("the probe ran with bounding set %x: CAP_SYS_MODULE or CAP_SYS_RAWIO is in it", bnd)
	}
	if seccomp != "2" {
		t.Errorf("the probe ran with seccomp mode %q, not 2 (filter)", seccomp)
	}
}

// exec -t opens the instance's terminal multiplexer as the host's root:
// one that the instance replaced with a symlink, or with another file,
// must be refused, never followed to a host file.
func TestExecTerminalConfined(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a")
	if got := e.ok("exec", "-t", "a", "--", "echo", "ok"); !strings.Contains(got, "ok") {
		t.Fatalf("exec -t said %q", got)
	}
	e.ok("exec", "a", "--", "sh", "-c", "umount -l /dev/pts && ln -s /etc/hostname /dev/pts/ptmx")
	e.fails(2, "not a devpts terminal multiplexer", "exec", "-t", "a", "--", "true")
}

// silo console on a terminal sets the size of the instance's console
// through its /dev/console, as the host's root: one that the instance
// replaced with a symlink must be refused, never followed to a terminal
// of the host.
func TestConsoleResizeConfined(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a")
	// A terminal of the host, 10x5, that the symlink names.
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Col: 10, Row: 5}); err != nil {
		t.Fatal(err)
	}
	e.ok("exec", "a", "--", "sh", "-c", fmt.Sprintf("umount -l /dev/console && rm /dev/console && ln -s /dev/pts/%d /dev/console", n))
	term, out, cmd := e.onTerminal(90, 30, "--debug", "console", "a")
	waitOutput(t, out, "To detach from the console", nil)
	if _, err := term.Write([]byte{1, 'q'}); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, out)
	if !strings.Contains(out.String(), "/dev/console is not a devpts terminal") {
		t.Errorf("the resize was not refused:\n%q", out.String())
	}
	if ws, err := unix.IoctlGetWinsize(mfd, unix.TIOCGWINSZ); err != nil || ws.Col != 10 || ws.Row != 5 {
		t.Fatalf("the host's terminal that the instance's /dev/console names was resized: %+v, %v", ws, err)
	}
}
