package engine

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"

	"github.com/silo-dev/silo/errkind"
)

// namePatterns are compiled on first use, not at start-up, which every
// command would pay for.
var namePatterns = sync.OnceValue(func() map[string]*regexp.Regexp {
	return map[string]*regexp.Regexp{
		// An instance's name becomes its hostname.
		"instance": regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`),
		"pool":     regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`),
		"snapshot": regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`),
		"alias":    regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$`),
	}
})

var nameRules = map[string]string{
	"instance": "letters, digits and inner hyphens, starting with a letter, at most 63",
	"pool":     "letters, digits, '.', '_' and '-', at most 63",
	"snapshot": "letters, digits, '.', '_' and '-', at most 63",
	"alias":    "letters, digits, '.', '_', ':', '/' and '-', at most 128",
}

// checkName refuses a name people gave that silo cannot use.
func checkName(kind, name string) error {
	if !namePatterns()[kind].MatchString(name) || strings.Contains(name, "..") {
		return errkind.Wrap(errkind.Invalid, "invalid %s name %q: use %s", kind, name, nameRules[kind])
	}
	return nil
}

// newID returns a fresh ID for something on disk.
func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
