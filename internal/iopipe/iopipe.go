// Package iopipe joins a function that writes a stream to one that reads it.
package iopipe

import (
	"errors"
	"io"
	"sync"
)

// Run runs write and read at once, joined by a Pipe of Buffer bytes, so
// that each goes on while the other is busy; the first failure
// stops both and is the one returned. The side that failed second failed
// because the pipe broke under it (a sender killed by SIGPIPE, a receiver
// that calls the stream incomplete), which says nothing of the cause.
func Run(write func(io.Writer) error, read func(io.Reader) error) error {
	var (
		once  sync.Once
		first error
	)
	fail := func(err error) { once.Do(func() { first = err }) }
	pr, pw := Pipe(Buffer)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := write(pw)
		if err != nil {
			fail(err)
		}
		pw.CloseWithError(err)
	}()
	if err := read(pr); err != nil {
		fail(err)
		pr.CloseWithError(errReaderStopped)
	} else {
		// Drain what the reader left, so that the writer can finish.
		_, _ = io.Copy(io.Discard, pr)
	}
	<-done
	return first
}

var errReaderStopped = errors.New("the receiving side stopped")

// Counter reads from R and counts the bytes read in N: what a stream
// carried.
type Counter struct {
	R io.Reader
	N int64
}

func (c *Counter) Read(p []byte) (int, error) {
	k, err := c.R.Read(p)
	c.N += int64(k)
	return k, err
}
