package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
)

// renderVars are what the tests render templates with.
var renderVars = map[string]any{
	"container":  map[string]string{"name": "web", "ephemeral": "false"},
	"config":     map[string]string{"user.user-data": "#cloud-config"},
	"properties": map[string]string{"default": "fallback"},
	"trigger":    "create",
}

// Each template of testdata/image/templates renders as its .out file says;
// each of bad/ is refused.
func TestRender(t *testing.T) {
	outs := testutil.TestdataFiles(t, "image/templates", "*.out")
	for name, src := range testutil.TestdataFiles(t, "image/templates", "*.tpl") {
		want, ok := outs[strings.TrimSuffix(name, ".tpl")+".out"]
		if !ok {
			t.Fatalf("%s has no .out file", name)
		}
		got, err := Render(string(src), renderVars)
		if err != nil || got != string(want) {
			t.Errorf("%s: Render(%q) = %q, %v; want %q", name, src, got, err, want)
		}
	}
	for name, bad := range testutil.TestdataFiles(t, "image/templates/bad", "*.tpl") {
		if _, err := Render(string(bad), renderVars); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: Render(%q): %v, want an Invalid error", name, bad, err)
		}
	}
}

// FuzzRender checks, on any template, that an error is of kind Invalid and
// depends on the template only (one that parses renders under any
// variables), that rendering is deterministic, that text without tags
// comes out as it is, and that the output is bounded by the template's
// length: a template cannot loop.
//
// Its seeds are the templates of testdata/image (see FuzzExtract in
// internal/archive for why they live there); inputs that once failed are
// kept in testdata/image/fuzz/*.tpl.
func FuzzRender(f *testing.F) {
	testutil.AddSeeds(f, "*.tpl", "image/templates", "image/templates/bad", "image/lxd/templates", "image/fuzz")
	longest := 0
	for _, v := range []any{renderVars["container"], renderVars["config"], renderVars["properties"]} {
		for _, s := range v.(map[string]string) {
			longest = max(longest, len(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := string(data)
		got, err := Render(src, renderVars)
		_, errNone := Render(src, map[string]any{})
		if (err == nil) != (errNone == nil) {
			t.Fatalf("Render(%q) fails with some variables only: %v / %v", src, err, errNone)
		}
		if err != nil {
			if !errors.Is(err, errkind.Invalid) {
				t.Fatalf("Render(%q): %v, not of kind Invalid", src, err)
			}
			return
		}
		if again, _ := Render(src, renderVars); again != got {
			t.Fatalf("Render(%q) gave %q, then %q", src, got, again)
		}
		if !strings.ContainsRune(src, '{') && got != src {
			t.Fatalf("Render(%q) = %q: text without tags changed", src, got)
		}
		// Each output tag takes at least 5 bytes and prints a variable, a
		// literal of its own source or a boolean.
		if limit := len(src) + len(src)/5*max(longest, len("False")); len(got) > limit {
			t.Fatalf("Render(%q) gave %d bytes, more than %d", src, len(got), limit)
		}
	})
}
