package runcmd

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

func TestRunsInTheCLocale(t *testing.T) {
	t.Setenv("LC_ALL", "fr_FR.UTF-8")
	out, err := Run(context.Background(), "sh", "-c", `echo "$LC_ALL"`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != "C" {
		t.Errorf("LC_ALL = %q, want C: the tools' messages must be English", got)
	}
}

func TestErrorKinds(t *testing.T) {
	_, err := Run(context.Background(), "sh", "-c", "echo \"cannot open 'p/x': dataset does not exist\" >&2; exit 1")
	if !errors.Is(err, errkind.NotFound) || errors.Is(err, errkind.Busy) {
		t.Errorf("error %v: want NotFound only", err)
	}
	if got := err.Error(); got != `sh -c echo "cannot open 'p/x': dataset does not exist" >&2; exit 1: cannot open 'p/x': dataset does not exist` {
		t.Errorf("message %q", got)
	}
	if _, err := Run(context.Background(), "no-such-tool-here"); !errors.Is(err, errkind.Unavailable) {
		t.Errorf("missing tool: %v, want Unavailable", err)
	}
}

// A tool that meets a full pool says so in its own words; each is NoSpace
// and no other kind, and keeps the tool's exit status beneath.
func TestFullPoolMessages(t *testing.T) {
	for _, msg := range []string{
		"cannot receive new filesystem stream: out of space",
		"ERROR: write data failed: No space left on device",
		"tar: etc/big: Cannot write: Disk quota exceeded",
		"cannot create 'p/x': out of space\ncannot open 'p/y': dataset does not exist",
	} {
		_, err := Run(context.Background(), "sh", "-c", `printf '%s\n' "$1" >&2; exit 3`, "sh", msg)
		err = errkind.Wrap(errkind.Invalid, "receive: %w", err)
		if !errors.Is(err, errkind.NoSpace) || errors.Is(err, errkind.NotFound) || errors.Is(err, errkind.Invalid) {
			t.Errorf("%q: %v is not NoSpace alone", msg, err)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("%q: the exit status is lost", msg)
		}
	}
}

// btrfs receive prints where it is before what went wrong.
func TestMessageSaysWhatWentWrong(t *testing.T) {
	_, err := Run(context.Background(), "sh", "-c", "printf 'At subvol v\\nERROR: write data failed: No space left on device\\n' >&2; exit 1")
	if got := err.Error(); !strings.HasSuffix(got, ": ERROR: write data failed: No space left on device") {
		t.Errorf("message %q", got)
	}
}
