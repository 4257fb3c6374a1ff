// Package errkind holds the few kinds of error that silo's layers wrap their
// failures onto, so that the CLI can map any error to a message and exit code
// with errors.Is, whatever layer it came from.
package errkind

import (
	"errors"
	"fmt"
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

// Wrap returns an error that reads as msg and matches kind with errors.Is.
func Wrap(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
