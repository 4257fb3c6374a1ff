package benchutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ZFSFloor times the bare zfs commands that silo's zfs driver runs to
// clone an image and to snapshot an instance: `zfs clone` of the sealed
// snapshot of the one image in a zpool, and `zfs snapshot` of that clone,
// made beside the driver's volumes and destroyed. Run it between the runs
// it is compared with: what silo adds is the difference.
type ZFSFloor struct {
	origin, parent  string
	n               int
	Clone, Snapshot []time.Duration
}

// NewZFSFloor finds the image in zpool.
func NewZFSFloor(zpool string) *ZFSFloor {
	origin, parent := sealedImage(zpool)
	return &ZFSFloor{origin: origin, parent: parent}
}

// Run times one clone and one snapshot.
func (f *ZFSFloor) Run() {
	ds := fmt.Sprintf("%s/floor%d", f.parent, f.n)
	f.n++
	f.Clone = append(f.Clone, Timed(func() error { return zfs("clone", f.origin, ds) }))
	f.Snapshot = append(f.Snapshot, Timed(func() error { return zfs("snapshot", ds+"@s") }))
	// zfs-fuse will not destroy a mounted dataset that was written to.
	Check(zfs("unmount", ds))
	Check(zfs("destroy", "-r", ds))
}

// String gives the medians.
func (f *ZFSFloor) String() string {
	return fmt.Sprintf("the zfs command alone: clone %s  snapshot %s", Stat(f.Clone), Stat(f.Snapshot))
}

// sealedImage returns the sealed snapshot of the one image base in zpool,
// and the dataset that holds the volumes.
func sealedImage(zpool string) (origin, parent string) {
	out, err := exec.Command("zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", zpool).Output()
	Check(err)
	for _, s := range strings.Fields(string(out)) {
		if strings.HasSuffix(s, "@_sealed") {
			ds := strings.TrimSuffix(s, "@_sealed")
			return s, ds[:strings.LastIndex(ds, "/")]
		}
	}
	Check(fmt.Errorf("no sealed image in %s", zpool))
	return "", ""
}

// zfs runs a zfs command in the C locale, as the driver does.
func zfs(args ...string) error {
	cmd := exec.Command("zfs", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("zfs %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
