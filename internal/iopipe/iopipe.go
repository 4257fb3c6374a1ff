// Package iopipe joins a function that writes a stream to one that reads it.
package iopipe

import (
	"errors"
	"io"
)

// Run runs write and read at once, joined by a pipe; the first failure
// stops both and is the one returned.
func Run(write func(io.Writer) error, read func(io.Reader) error) error {
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		werr <- err
	}()
	rerr := read(pr)
	if rerr != nil {
		pr.CloseWithError(errReaderStopped)
	} else {
		// Drain what the reader left, so that the writer can finish.
		_, _ = io.Copy(io.Discard, pr)
	}
	if err := <-werr; err != nil && !errors.Is(err, errReaderStopped) {
		return err
	}
	return rerr
}

var errReaderStopped = errors.New("the receiving side stopped")
