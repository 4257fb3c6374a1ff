// Package errkind holds the few kinds of error that silo's layers wrap their
// failures onto, so that the CLI can map any error to a message and exit code
// with Of, whatever layer it came from, while errors.Is and errors.As still
// reach the cause beneath.
package errkind

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

var (
	// NotFound: the named pool, volume, snapshot, image or instance does not exist.
	NotFound = errors.New("not found")
	// AlreadyExists: the name is taken.
	AlreadyExists = errors.New("already exists")
	// Invalid: the request or its input is malformed (bad name, hostile archive...).
	Invalid = errors.New("invalid")
	// Busy: the object is in use (mounted, has dependants, locked by another command).
	Busy = errors.New("busy")
	// NoSpace: the pool is full.
	NoSpace = errors.New("no space left")
	// Unavailable: a part silo relies on (a binary, a daemon, a kernel feature) is missing.
	Unavailable = errors.New("unavailable")
)

// kinds in the order Of tries them, for an error that joins several: a full
// pool explains whatever failed after it, so it comes first.
var kinds = []error{NoSpace, Invalid, NotFound, AlreadyExists, Busy, Unavailable}

// Wrap returns an error of kind that reads as fmt.Errorf(format, args...)
// would, and keeps the cause that a %w in format names, for errors.Is and
// errors.As. A cause that has a kind of its own keeps it: the layer that met
// the failure knows best what it was, so that a receive that fills the pool
// stays NoSpace however the receive is wrapped later.
func Wrap(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if k := Of(err); k != nil {
		kind = k
	}
	return &kindError{kind: kind, err: err}
}

// FromErrno gives err the kind that its errno names, if any: ENOENT and
// ENOTDIR are NotFound, EEXIST AlreadyExists, EBUSY Busy, ENOSPC and EDQUOT
// NoSpace. Anything else, a permission error among them, comes back as it
// is. It is for the places where a missing file means that what the user
// named does not exist.
func FromErrno(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		kind = NotFound
	case errors.Is(err, syscall.EEXIST):
		kind = AlreadyExists
	case errors.Is(err, syscall.EBUSY):
		kind = Busy
	case noSpace(err):
		kind = NoSpace
	default:
		return err
	}
	return &kindError{kind: kind, err: err}
}

// Of returns the kind of err: one of the sentinels above, or nil. ENOSPC
// and EDQUOT are NoSpace wherever they come from, wrapped or bare.
func Of(err error) error {
	if err == nil {
		return nil
	}
	if noSpace(err) {
		return NoSpace
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

func noSpace(err error) bool {
	return errors.Is(err, NoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

type kindError struct {
	kind error
	err  error // reads as the message, and unwraps to the cause
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.err }

// names spell the kinds for Encode and Decode.
var names = map[error]string{NoSpace: "no-space", Invalid: "invalid", NotFound: "not-found",
	AlreadyExists: "exists", Busy: "busy", Unavailable: "unavailable"}

// Encode writes err as one line that Decode reads back with its kind, for
// an error that crosses from one process to another.
func Encode(err error) string {
	return Name(err) + " " + strings.ReplaceAll(err.Error(), "\n", " ")
}

// Name spells err's kind, "" for none.
func Name(err error) string { return names[Of(err)] }

// Decode reads a line that Encode wrote.
func Decode(line string) error {
	name, msg, _ := strings.Cut(line, " ")
	for k, n := range names {
		if n == name {
			return &kindError{kind: k, err: errors.New(msg)}
		}
	}
	return errors.New(msg)
}
