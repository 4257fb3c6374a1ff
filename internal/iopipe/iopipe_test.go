package iopipe

import (
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// Whichever side fails first is the failure reported, not the broken pipe
// that the other side then meets.
func TestFirstFailureWins(t *testing.T) {
	full := errors.New("the pool is full")
	// A sender that is a process, as zfs send and btrfs send are: the
	// receiver stopping kills it with SIGPIPE.
	send := func(w io.Writer) error {
		cmd := exec.Command("yes")
		cmd.Stdout = w
		return cmd.Run()
	}
	receive := func(r io.Reader) error {
		_, _ = io.CopyN(io.Discard, r, 1<<16)
		return full
	}
	if err := Run(send, receive); err != full {
		t.Errorf("a receiver that stops: %v, want %v", err, full)
	}

	cut := errors.New("the source went away")
	send = func(w io.Writer) error {
		io.WriteString(w, "part of a stream")
		return cut
	}
	receive = func(r io.Reader) error {
		if _, err := io.ReadAll(r); err != nil {
			return errors.New("incomplete stream")
		}
		return nil
	}
	if err := Run(send, receive); err != cut {
		t.Errorf("a sender that stops: %v, want %v", err, cut)
	}

	var got strings.Builder
	send = func(w io.Writer) error { _, err := io.WriteString(w, "whole"); return err }
	receive = func(r io.Reader) error { _, err := io.Copy(&got, r); return err }
	if err := Run(send, receive); err != nil || got.String() != "whole" {
		t.Errorf("a stream that goes through: %v, %q", err, got.String())
	}
}
