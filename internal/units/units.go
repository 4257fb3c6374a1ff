// Package units reads sizes as people write them.
package units

import (
	"strconv"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

// ParseSize reads "20GiB", "512MiB", "10G" or a count of bytes.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	suffix := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i"))
	n, err := strconv.ParseInt(num, 10, 64)
	shift, ok := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[suffix]
	if err != nil || !ok || n <= 0 || n > (1<<62)>>shift {
		return 0, errkind.Wrap(errkind.Invalid, "invalid size %q: give bytes or a number with KiB, MiB, GiB or TiB", s)
	}
	return n << shift, nil
}

// FormatSize writes n as ParseSize reads it back: in the largest binary
// unit that divides it, as in 20GiB, or in bytes.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
