package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	if err := writeAt(etc, "machine-id", "/etc/machine-id", bytes.NewReader([]byte(hex.EncodeToString(id)+"\n")), 0o444, int(s.UID(0)), int(s.GID(0)), true); err != nil {
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
	return etcFileAt(etc, "hostname", []byte(name+"\n"), s, true)
}

// etcFileAt writes file name in the /etc directory etc unless it already
// holds want, as root's for a volume shifted by s; durably unless every
// start writes it anew.
func etcFileAt(etc int, name string, want []byte, s idmap.Shift, durable bool) error {
	if fd, err := unix.Openat(etc, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		f := os.NewFile(uintptr(fd), name)
		buf := make([]byte, len(want)+1)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		if bytes.Equal(buf[:n], want) {
			return nil
		}
	}
	return writeAt(etc, name, "/etc/"+name, bytes.NewReader(want), 0o644, int(s.UID(0)), int(s.GID(0)), durable)
}

// setResolvConf points the resolver of root at silo's dnsmasq, so that
// names resolve from init's first instruction, with or without a DHCP
// client in the image. An /etc/resolv.conf that is a symlink belongs to
// a resolver of the image's own (systemd-resolved, resolvconf), which
// DHCP feeds: it is left alone.
func setResolvConf(root string, text []byte, s idmap.Shift) error {
	etc, err := openEtc(root)
	if err != nil || etc < 0 {
		return err
	}
	defer unix.Close(etc)
	var st unix.Stat_t
	if err := unix.Fstatat(etc, "resolv.conf", &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return etcFileAt(etc, "resolv.conf", text, s, false)
}
