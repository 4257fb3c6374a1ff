package benchutil

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
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

// Silo runs the silo binary Bin on state directory State, always in a
// network namespace of its own, NS: the default profile gives every
// instance a nic on a bridge with NAT and a dnsmasq, which must never be
// made on the host's network.
type Silo struct {
	Bin, State string
	NS         *NetNS
	// CPUs, when set, are the only CPUs silo's commands run on (taskset's
	// list): two hosts on one machine, each with CPUs of its own.
	CPUs string
}

// NewSilo makes the network namespace for bin on state.
func NewSilo(bin, state string) *Silo {
	return &Silo{Bin: bin, State: state, NS: NewNetNS("silo-bench")}
}

// TempSilo builds silo and gives it a state directory under /var/tmp,
// named after the benchmark; done deletes silo's networks and the
// directory. The instances must be gone by then.
func TempSilo(bench string) (s *Silo, done func()) {
	work, err := os.MkdirTemp("/var/tmp", bench+"-")
	Check(err)
	s = NewSilo(BuildSilo(work), filepath.Join(work, "state"))
	return s, func() {
		s.Close()
		os.RemoveAll(work)
	}
}

// Command is silo with args on s's state directory; start it with s.NS.
func (s *Silo) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(s.Bin, args...)
	if s.CPUs != "" {
		cmd = exec.Command("taskset", append([]string{"-c", s.CPUs, s.Bin}, args...)...)
	}
	cmd.Env = append(os.Environ(), "SILO_STATE_DIR="+s.State)
	return cmd
}

// Run runs a silo command. A warning on stderr (something left to clean
// up) counts as a failure too.
func (s *Silo) Run(args ...string) error {
	_, err := s.run(true, args)
	return err
}

// RunLenient is Run for commands whose warnings are expected, such as
// putting an image on zfs-fuse, which drops its extended attributes.
func (s *Silo) RunLenient(args ...string) error {
	_, err := s.run(false, args)
	return err
}

// JSON runs a silo command (strictly) and decodes its output into v.
func (s *Silo) JSON(v any, args ...string) error {
	out, err := s.run(true, append(args, "--format", "json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("silo %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (s *Silo) run(strict bool, args []string) ([]byte, error) {
	cmd := s.Command(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := s.NS.Output(cmd)
	if err != nil || strict && stderr.Len() > 0 {
		return nil, fmt.Errorf("silo %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// Change writes size random bytes into instance name at path, with silo
// file push: a change for a refresh to carry.
func (s *Silo) Change(name, path string, size int) error {
	b := make([]byte, size)
	rand.Read(b)
	cmd := s.Command("file", "push", "-", name+path)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := s.NS.Output(cmd); err != nil {
		return fmt.Errorf("file push %s%s: %w: %s", name, path, err, out)
	}
	return nil
}

// DeleteNetworks deletes every network, first taking the profiles' nics
// off them, which keep them in use. The instances must be gone.
func (s *Silo) DeleteNetworks() error {
	var profiles []api.Profile
	if err := s.JSON(&profiles, "profile", "list"); err != nil {
		return err
	}
	for _, p := range profiles {
		for name, d := range p.Devices {
			if d["type"] == "nic" {
				if err := s.Run("profile", "device", "remove", p.Name, name); err != nil {
					return err
				}
			}
		}
	}
	var nets []api.Network
	if err := s.JSON(&nets, "network", "list"); err != nil {
		return err
	}
	for _, n := range nets {
		if err := s.Run("network", "delete", n.Name); err != nil {
			return err
		}
	}
	return nil
}

// Close deletes silo's networks, then the namespace with whatever still
// runs in it. The instances must be gone.
func (s *Silo) Close() {
	if err := s.DeleteNetworks(); err != nil {
		log.Printf("delete the networks: %v", err)
	}
	s.NS.Close()
}

// DebianImage returns the Debian bookworm minbase image with systemd,
// which hack/debian-image.sh builds once and caches.
func DebianImage() string {
	return hackImage("hack/debian-image.sh")
}

// BusyboxImage returns the busybox image with busybox's init, which
// hack/busybox-image.sh builds once and caches.
func BusyboxImage() string {
	return hackImage("hack/busybox-image.sh")
}

// hackImage runs the script that builds an image, and returns its path.
func hackImage(script string) string {
	out, err := exec.Command(script).Output()
	Check(err)
	return strings.TrimSpace(string(out))
}

// Debian is a state directory with the Debian bookworm minbase image
// (hack/debian-image.sh) imported as "debian" and a btrfs loop pool
// "bench", for benchmarks of whole commands.
type Debian struct {
	*Silo
	Work string
	// Names lists the instances that Close deletes.
	Names []string
	mu    sync.Mutex
}

// Track adds name to the instances that Close deletes, from any goroutine.
func (d *Debian) Track(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Names = append(d.Names, name)
}

// NewDebian sets a Debian benchmark up under a new directory named for prefix.
func NewDebian(prefix string) *Debian {
	work, err := os.MkdirTemp("/var/tmp", prefix+"-")
	Check(err)
	d := &Debian{Work: work, Silo: NewSilo(BuildSilo(work), filepath.Join(work, "state"))}
	Check(d.Run("image", "import", DebianImage(), "--alias", "debian"))
	Check(d.Run("pool", "create", "bench", "--driver", "btrfs", "--size", "20GiB"))
	return d
}

// Close deletes the instances, the pool, the networks and the directory.
func (d *Debian) Close() {
	for _, n := range d.Names {
		_ = d.Run("delete", "--force", n)
	}
	_ = d.Run("pool", "delete", "bench")
	d.Silo.Close()
	os.RemoveAll(d.Work)
}

// Measure runs silo with stdout to out and stdin from in (when not
// empty), and returns its wall time and peak resident set in KiB.
func Measure(silo *Silo, out, in string, args ...string) (time.Duration, int64) {
	cmd := silo.Command(args...)
	cmd.Stderr = os.Stderr
	if out != "" {
		f, err := os.Create(out)
		Check(err)
		defer f.Close()
		cmd.Stdout = f
	}
	if in != "" {
		f, err := os.Open(in)
		Check(err)
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	if err := silo.NS.Run(cmd); err != nil {
		Check(fmt.Errorf("silo %s: %w", strings.Join(args, " "), err))
	}
	d := time.Since(start)
	return d, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}
