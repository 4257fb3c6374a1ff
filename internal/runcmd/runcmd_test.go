package runcmd

import (
	"context"
	"errors"
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
