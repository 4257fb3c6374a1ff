package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/internal/idmap"
)

// The systemd of an unprivileged container manages its own cgroup
// subtree: its cgroups belong to its root. runc 1.1 hands the cgroup over
// on a pure cgroup v2 host only (and only the unified one); on a hybrid
// one, silo does, in every hierarchy.

// BundleRoot is the host UID and GID of the root of the container whose
// bundle is in dir; ok is false when the container has no user namespace.
func BundleRoot(dir string) (uid, gid int, ok bool, err error) {
	s, err := readBundle(dir)
	if err != nil {
		return 0, 0, false, err
	}
	if s.Linux == nil || len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
		return 0, 0, false, nil
	}
	return int(s.Linux.UIDMappings[0].HostID), int(s.Linux.GIDMappings[0].HostID), true, nil
}

// DelegateCgroups gives the cgroups of process pid (a container's init,
// before it runs) in every hierarchy to uid and gid, as LXC does: each
// directory, and the files that delegation hands over (for cgroup v2,
// those /sys/kernel/cgroup/delegate lists). The files of the limits set
// on the container stay the host's, out of its reach; it may make
// cgroups below, limited within them.
func DelegateCgroups(pid, uid, gid int) error {
	return eachCgroup(pid, func(key, dir string) error {
		for _, f := range append(delegatedFiles(key), ".") {
			if err := os.Lchown(filepath.Join(dir, f), uid, gid); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("delegate the cgroup %s: %w", dir, err)
			}
		}
		return nil
	})
}

// delegatedFiles are the files of a delegated cgroup, in hierarchy key,
// that its owner writes.
func delegatedFiles(key string) []string {
	if key != "cgroup2" {
		return []string{"cgroup.procs", "tasks", "cgroup.clone_children"}
	}
	if b, err := os.ReadFile("/sys/kernel/cgroup/delegate"); err == nil {
		return strings.Fields(string(b))
	}
	return []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"}
}

// eachCgroup calls fn with the directory of process pid's cgroup in each
// hierarchy mounted here, and the hierarchy's key (as cgroupMounts names
// it). A process in a hierarchy's root is skipped there: it has no cgroup
// of its own to join or hand over.
func eachCgroup(pid int, fn func(key, dir string) error) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		key := parts[1]
		if parts[0] == "0" && key == "" {
			key = "cgroup2"
		}
		if mnt, ok := mounts[key]; ok {
			if err := fn(key, filepath.Join(mnt, parts[2])); err != nil {
				return err
			}
		}
	}
	return nil
}

// rootOf is the host UID and GID of root in the user namespace of
// process pid: 0 and 0 when it shares the host's.
func rootOf(pid int) (uid, gid int) {
	u, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/uid_map")
	g, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/gid_map")
	hu, _, okU := idmap.Parse(string(u))
	hg, _, okG := idmap.Parse(string(g))
	if !okU || !okG {
		return 0, 0
	}
	return int(hu), int(hg)
}
