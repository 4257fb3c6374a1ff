package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/silo-dev/silo/internal/testutil"
)

// On a pure cgroup v2 host, an unprivileged Debian boots to running with
// its cgroup tree its own. This host is hybrid: the test gives silo, its
// monitor and the container a private mount namespace whose
// /sys/fs/cgroup is the unified hierarchy alone, which is what silo, runc
// and systemd look at to tell the two apart.
func TestPureCgroupV2(t *testing.T) {
	testutil.NeedCommand(t, "unshare")
	e := newEnv(t, "btrfs")
	e.ok("image", "import", testImage(t, "debian-image.sh"), "--alias", "debian")
	silo := strings.Join(e.silo("--state-dir", e.state), " ")
	script := strings.Join([]string{
		"set -e",
		"umount -l /sys/fs/cgroup",
		"mount -t cgroup2 none /sys/fs/cgroup",
		silo + " launch debian v2 --pool " + e.pool + " --wait --timeout 2m",
		silo + " exec v2 -- systemctl is-system-running",
		silo + " exec v2 -- stat -f -c %T /sys/fs/cgroup",
		silo + " exec v2 -- stat -c %u /sys/fs/cgroup",
		silo + " exec v2 -- cat /proc/self/uid_map",
		silo + " stop v2",
	}, "\n")
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("got %q", out)
	}
	state, fs, owner, uidMap := lines[len(lines)-4], lines[len(lines)-3], lines[len(lines)-2], strings.Fields(lines[len(lines)-1])
	if state != "running" && state != "degraded" {
		t.Errorf("systemd is %q", state)
	}
	if fs != "cgroup2fs" || owner != "0" {
		t.Errorf("/sys/fs/cgroup inside is %s owned by %s, want cgroup2fs owned by root", fs, owner)
	}
	if len(uidMap) != 3 || uidMap[1] == "0" {
		t.Errorf("uid_map %q: the instance is not unprivileged", uidMap)
	}
}
