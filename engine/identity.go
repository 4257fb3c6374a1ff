package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// giveIdentity gives a new clone its own machine ID and its hostname, so
// that no two clones of one image share a machine ID. A root without /etc
// is left alone.
func giveIdentity(root, name string) error {
	if st, err := os.Lstat(filepath.Join(root, "etc")); err != nil || !st.IsDir() {
		return nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if err := writeIn(root, "/etc/machine-id", bytes.NewReader([]byte(hex.EncodeToString(id)+"\n")), 0o444, 0, 0); err != nil {
		return err
	}
	return setHostname(root, name)
}

// setHostname writes /etc/hostname unless it already says name.
func setHostname(root, name string) error {
	want := []byte(name + "\n")
	fd, err := openIn(root, "/etc/hostname", unix.O_RDONLY)
	if err == nil {
		f := os.NewFile(uintptr(fd), "hostname")
		buf := make([]byte, 256)
		n, _ := f.Read(buf)
		f.Close()
		if bytes.Equal(buf[:n], want) {
			return nil
		}
	}
	if st, err := os.Lstat(filepath.Join(root, "etc")); err != nil || !st.IsDir() {
		return nil
	}
	if err := writeIn(root, "/etc/hostname", bytes.NewReader(want), 0o644, 0, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
