package engine

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

// nameRule says what a name of one kind may be: ASCII letters and digits,
// plus the extra characters, at most max of them. It is checked by hand: the
// equivalent regular expressions cost every command 3 ms to compile.
type nameRule struct {
	max         int
	extra       string
	letterFirst bool // else a letter or a digit
	alnumLast   bool
	desc        string
}

var nameRules = map[string]nameRule{
	// An instance's name becomes its hostname.
	"instance": {max: 63, extra: "-", letterFirst: true, alnumLast: true,
		desc: "letters, digits and inner hyphens, starting with a letter, at most 63"},
	"pool":     {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	"volume":   {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	"snapshot": {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	"backup":   {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	"alias":    {max: 128, extra: "_./:-", desc: "letters, digits, '.', '_', ':', '/' and '-', at most 128"},
	"profile":  {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	// A trusted client's name, and a remote's on the client side.
	"client": {max: 63, extra: "_.-", desc: "letters, digits, '.', '_' and '-', at most 63"},
	// A device's name is a part of its volatile keys, which dots join.
	"device": {max: 63, extra: "_-", desc: "letters, digits, '_' and '-', at most 63"},
	// A network's name is its bridge's, and a nic's name inside is an
	// interface's: the kernel takes at most 15 characters.
	"network":   ifname,
	"interface": ifname,
}

var ifname = nameRule{max: 15, extra: "_-", letterFirst: true, desc: "letters, digits, '_' and '-', starting with a letter, at most 15"}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || '0' <= c && c <= '9' }

func (r nameRule) allows(name string) bool {
	if name == "" || len(name) > r.max || strings.Contains(name, "..") {
		return false
	}
	if first := name[0]; !isLetter(first) && (r.letterFirst || !isAlnum(first)) {
		return false
	}
	if r.alnumLast && !isAlnum(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isAlnum(name[i]) && !strings.ContainsRune(r.extra, rune(name[i])) {
			return false
		}
	}
	return true
}

// checkName refuses a name people gave that silo cannot use.
func checkName(kind, name string) error {
	if r := nameRules[kind]; !r.allows(name) {
		return errkind.Wrap(errkind.Invalid, "invalid %s name %q: use %s", kind, name, r.desc)
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newID returns a fresh ID for something on disk.
func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
