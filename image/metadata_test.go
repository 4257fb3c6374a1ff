package image

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
)

// FuzzParseMetadata checks, on any metadata.yaml, that an error is of kind
// Invalid, and that what is accepted holds an architecture and templates
// for absolute paths with known triggers, and reads back as it was once written by
// Marshal.
//
// Its seeds are the metadata.yaml files of testdata/image (see FuzzExtract
// in internal/archive for why they live there); inputs that once failed
// are kept in testdata/image/fuzz/*.yaml.
func FuzzParseMetadata(f *testing.F) {
	testutil.AddSeeds(f, "*.yaml", "image/lxd", "image/metadata", "image/fuzz")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			if !errors.Is(err, errkind.Invalid) {
				t.Fatalf("ParseMetadata: %v, not of kind Invalid", err)
			}
			return
		}
		if m.Architecture == "" {
			t.Fatal("accepted metadata names no architecture")
		}
		for p, tpl := range m.Templates {
			if !strings.HasPrefix(p, "/") || tpl == nil || tpl.Template == "" {
				t.Fatalf("accepted a template for %q: %+v", p, tpl)
			}
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := ParseMetadata(out)
		if err != nil {
			t.Fatalf("what Marshal wrote does not parse: %v\n%s", err, out)
		}
		if again, err := back.Marshal(); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("metadata changed on its way through Marshal (%v):\n%s\n%s", err, out, again)
		}
	})
}
