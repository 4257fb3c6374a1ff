package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/idmap"
)

// giveIdentity gives a new clone its own machine ID and its hostname, so
// that no two clones of one image share a machine ID. A root without /etc
// is left alone. The files are root's inside the instance, whose volume
// is shifted on disk by s. Both files are written through one handle on /etc: on a
// FUSE filesystem (zfs-fuse) every lookup is a round trip to its daemon.
func giveIdentity(root, name string, s idmap.Shift) error {
	etc, err := openEtc(root)
	if err != nil || etc < 0 {
		return err
	}
	defer unix.Close(etc)
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if err := writeAt(etc, "machine-id", "/etc/machine-id", bytes.NewReader([]byte(hex.EncodeToString(id)+"\n")), 0o444, int(s.UID(0)), int(s.GID(0))); err != nil {
		return err
	}
	return hostnameAt(etc, name, s)
}

// setHostname writes /etc/hostname unless it already says name, as root's
// inside an instance whose volume is shifted on disk by s.
func setHostname(root, name string, s idmap.Shift) error {
	etc, err := openEtc(root)
	if err != nil || etc < 0 {
		return err
	}
	defer unix.Close(etc)
	return hostnameAt(etc, name, s)
}

// openEtc opens the /etc directory of root, or returns -1 when there is
// none. A symlink is not followed: it could lead out of root.
func openEtc(root string) (int, error) {
	fd, err := unix.Open(filepath.Join(root, "etc"), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("open /etc: %w", err)
	}
	return fd, nil
}

// hostnameAt writes hostname in the /etc directory etc unless it already
// says name, as root's for a volume shifted by s.
func hostnameAt(etc int, name string, s idmap.Shift) error {
	want := []byte(name + "\n")
	if fd, err := unix.Openat(etc, "hostname", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		f := os.NewFile(uintptr(fd), "hostname")
		buf := make([]byte, 256)
		n, _ := f.Read(buf)
		f.Close()
		if bytes.Equal(buf[:n], want) {
			return nil
		}
	}
	return writeAt(etc, "hostname", "/etc/hostname", bytes.NewReader(want), 0o644, int(s.UID(0)), int(s.GID(0)))
}
