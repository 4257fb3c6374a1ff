// Package runcmd runs the system tools that drivers rely on (zfs, btrfs,
// mkfs, mount) and turns their failures into errors that say what failed.
package runcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// Error is a tool's failure: the command and what it printed on stderr.
type Error struct {
	Cmd    string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", e.Cmd, tellingLine(msg))
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps well-known tool messages onto errkind sentinels, one kind per
// message.
func (e *Error) Is(target error) bool { return target != nil && target == e.kind() }

// toolMessages are what the tools print for each kind, lower case, in the
// order they are tried: a full pool first, as it explains the rest.
var toolMessages = []struct {
	kind  error
	texts []string
}{
	{errkind.NoSpace, []string{"no space left", "out of space", "quota exceeded"}},
	{errkind.AlreadyExists, []string{"already exists", "file exists"}},
	{errkind.NotFound, []string{"does not exist", "no such"}},
	{errkind.Busy, []string{"busy"}},
}

func (e *Error) kind() error {
	s := strings.ToLower(e.Stderr)
	for _, m := range toolMessages {
		for _, t := range m.texts {
			if strings.Contains(s, t) {
				return m.kind
			}
		}
	}
	return nil
}

// tellingLine is the line of a tool's output that says what went wrong:
// the first that says "error", as btrfs prints progress before it, or else
// the first.
func tellingLine(s string) string {
	lines := strings.Split(s, "\n")
	for _, l := range lines {
		if strings.Contains(strings.ToLower(l), "error") {
			return strings.TrimSpace(l)
		}
	}
	return lines[0]
}

// Trace logs, at debug level, that cmd is about to run, and returns the
// function that logs how it ended: its arguments, duration and exit.
// Every external command silo runs goes through it, so that --debug shows
// where a command's time went.
func Trace(cmd *exec.Cmd) (done func(err error)) {
	start := time.Now()
	return func(err error) {
		if !slog.Default().Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		exit := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			exit = ee.ExitCode()
		case err != nil:
			exit = -1
		}
		args := []any{"cmd", strings.Join(cmd.Args, " "), "duration", time.Since(start), "exit", exit}
		if err != nil {
			args = append(args, "error", err)
		}
		slog.Debug("ran", args...)
	}
}

// Cmd describes one invocation.
type Cmd struct {
	Name   string
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer // output is returned by Run when nil
}

// Run runs the command and returns its standard output when Stdout is nil.
func (c Cmd) Run(ctx context.Context) (string, error) {
	path, err := exec.LookPath(c.Name)
	if err != nil {
		return "", errkind.Wrap(errkind.Unavailable, "%s is not installed (hack/install-deps.sh installs it): %w", c.Name, err)
	}
	cmd := exec.CommandContext(ctx, path, c.Args...)
	// Error matches the tools' messages in English; and a zfs command that
	// loads no locale starts 3 ms sooner.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdin = c.Stdin
	cmd.Stdout = &stdout
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	cmd.Stderr = &stderr
	done := Trace(cmd)
	err = cmd.Run()
	done(err)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return "", &Error{Cmd: c.Name + " " + strings.Join(c.Args, " "), Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// Run runs name with args and returns its standard output.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	return Cmd{Name: name, Args: args}.Run(ctx)
}
