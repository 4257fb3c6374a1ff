package benchutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildSilo builds the silo command into dir with the Makefile, so that
// the figures are those of the binary users build.
func BuildSilo(dir string) string {
	silo := filepath.Join(dir, "silo")
	build := exec.Command("make", "--no-print-directory", "build", "BIN="+silo)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	Check(build.Run())
	return silo
}

// Runner runs silo commands on state directory state. A warning on stderr
// (something left to clean up) counts as a failure too.
func Runner(silo, state string) func(args ...string) error {
	return runner(silo, state, true)
}

// LenientRunner is Runner for commands whose warnings are expected, such
// as putting an image on zfs-fuse, which drops its extended attributes.
func LenientRunner(silo, state string) func(args ...string) error {
	return runner(silo, state, false)
}

func runner(silo, state string, strict bool) func(args ...string) error {
	return func(args ...string) error {
		cmd := exec.Command(silo, args...)
		cmd.Env = append(os.Environ(), "SILO_STATE_DIR="+state)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || strict && stderr.Len() > 0 {
			return fmt.Errorf("silo %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}
}

// DebianImage returns the Debian bookworm minbase image with systemd,
// which hack/debian-image.sh builds once and caches.
func DebianImage() string {
	out, err := exec.Command("hack/debian-image.sh").Output()
	Check(err)
	return strings.TrimSpace(string(out))
}

// Debian is a state directory with the Debian bookworm minbase image
// (hack/debian-image.sh) imported as "debian" and a btrfs loop pool
// "bench", for benchmarks of whole commands.
type Debian struct {
	Work, Silo, State string
	Run               func(args ...string) error
	// Names lists the instances that Close deletes.
	Names []string
}

// NewDebian sets a Debian benchmark up under a new directory named for prefix.
func NewDebian(prefix string) *Debian {
	work, err := os.MkdirTemp("/var/tmp", prefix+"-")
	Check(err)
	d := &Debian{Work: work, Silo: BuildSilo(work), State: filepath.Join(work, "state")}
	d.Run = Runner(d.Silo, d.State)
	Check(d.Run("image", "import", DebianImage(), "--alias", "debian"))
	Check(d.Run("pool", "create", "bench", "--driver", "btrfs", "--size", "20GiB"))
	return d
}

// Close deletes the instances, the pool and the directory.
func (d *Debian) Close() {
	for _, n := range d.Names {
		_ = d.Run("delete", "--force", n)
	}
	_ = d.Run("pool", "delete", "bench")
	os.RemoveAll(d.Work)
}
