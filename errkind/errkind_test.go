package errkind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func TestWrapKeepsTheCause(t *testing.T) {
	_, cause := os.Open("/nonexistent/file")
	err := Wrap(Invalid, "read %s: %w", "x", cause)
	if !errors.Is(err, Invalid) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v: errors.Is finds the kind %v and the cause %v, want both", err, errors.Is(err, Invalid), errors.Is(err, fs.ErrNotExist))
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/nonexistent/file" {
		t.Errorf("%v: errors.As does not reach the *fs.PathError", err)
	}
	if got, want := err.Error(), "read x: "+cause.Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if errors.Is(err, NotFound) || Of(err) != Invalid {
		t.Errorf("%v: kind %v, want Invalid alone", err, Of(err))
	}

	exitErr := exec.Command("false").Run()
	err = fmt.Errorf("build: %w", Wrap(Unavailable, "mirror: %w", exitErr))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || Of(err) != Unavailable {
		t.Errorf("%v: errors.As does not reach the *exec.ExitError, or kind %v", err, Of(err))
	}
}

// The kind a lower layer set is not masked by a later wrap of another kind.
func TestInnerKindWins(t *testing.T) {
	full := &os.PathError{Op: "write", Path: "/pool/f", Err: syscall.ENOSPC}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"a bare ENOSPC", fmt.Errorf("copy: %w", full), NoSpace},
		{"EDQUOT", fmt.Errorf("copy: %w", syscall.EDQUOT), NoSpace},
		{"ENOSPC wrapped as invalid", Wrap(Invalid, "receive: %w", full), NoSpace},
		{"a kind wrapped twice", Wrap(Invalid, "import: %w", fmt.Errorf("stream 0: %w", Wrap(NotFound, "volume v not found"))), NotFound},
		{"a cause without a kind", Wrap(Busy, "in use: %w", errors.New("plain")), Busy},
		{"a flattened cause", Wrap(Invalid, "receive: %v", full), Invalid},
		{"a full pool among other failures", errors.Join(Wrap(Invalid, "bad"), full), NoSpace},
		{"no kind", errors.New("plain"), nil},
		{"no error", nil, nil},
	} {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: kind %v, want %v", c.name, got, c.want)
		}
		if c.want != nil && c.want != NoSpace && !errors.Is(c.err, c.want) {
			t.Errorf("%s: errors.Is misses %v", c.name, c.want)
		}
	}
	if err := Wrap(Invalid, "receive: %w", full); !errors.Is(err, NoSpace) || errors.Is(err, Invalid) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("%v: want NoSpace and ENOSPC, not Invalid", err)
	}
}

func TestFromErrno(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOENT, NotFound},
		{syscall.ENOTDIR, NotFound},
		{syscall.EEXIST, AlreadyExists},
		{syscall.EBUSY, Busy},
		{syscall.ENOSPC, NoSpace},
		{syscall.EDQUOT, NoSpace},
		{syscall.EACCES, nil},
		{syscall.EPERM, nil},
	} {
		cause := &os.PathError{Op: "stat", Path: "/src", Err: c.errno}
		err := FromErrno(cause)
		if got := Of(err); got != c.want {
			t.Errorf("%v: kind %v, want %v", c.errno, got, c.want)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%v: errors.Is misses %v", c.errno, c.want)
		}
		if !errors.Is(err, c.errno) || err.Error() != cause.Error() {
			t.Errorf("%v: %q does not keep its cause", c.errno, err)
		}
	}
	if FromErrno(nil) != nil {
		t.Error("FromErrno(nil) is not nil")
	}
}
