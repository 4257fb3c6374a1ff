package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// Xattrs returns the extended attributes of p (not following symlinks).
func Xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		if n == 0 {
			return nil, nil
		}
		out := map[string]string{}
		for _, name := range bytes.Split(buf[:n-1], []byte{0}) {
			v, err := getXattr(p, string(name))
			if err != nil {
				return nil, err
			}
			out[string(name)] = string(v)
		}
		return out, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		return buf[:n], nil
	}
}

var warnNoXattrs sync.Once

// SetXattr sets an extended attribute on p (not following symlinks). A
// filesystem without xattr support (zfs-fuse) loses them with one warning,
// as tar does, rather than failing the whole operation.
func SetXattr(p, name, value string) error {
	err := unix.Lsetxattr(p, name, []byte(value), 0)
	if errors.Is(err, unix.ENOTSUP) {
		warnNoXattrs.Do(func() {
			slog.Warn("filesystem does not support extended attributes; they are dropped", "path", p)
		})
		return nil
	}
	if err != nil {
		return fmt.Errorf("set xattr %s on %s: %w", name, p, err)
	}
	return nil
}
