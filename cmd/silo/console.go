package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// console attaches to the console of an instance of this host, through
// the socket of the process that keeps it, or prints its log.
func console(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	con, err := e.Console(c.Context, a[0])
	if err != nil {
		return err
	}
	if c.Bool("show-log") {
		for _, p := range con.Logs {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(os.Stdout, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if con.Socket == "" {
		return notRunning(errkind.Wrap(errkind.Busy, "instance %q is not running", a[0]))
	}
	conn, err := net.Dial("unix", con.Socket)
	if err != nil {
		return fmt.Errorf("attach to the console of %s: %w", a[0], err)
	}
	defer conn.Close()
	restore, err := attachTerminal(func(w, h int) {
		if err := e.ResizeConsole(c.Context, a[0], w, h); err != nil {
			slog.Debug("console: resize", "error", err)
		}
	})
	if err != nil {
		return err
	}
	defer restore()
	out := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, conn)
		close(out)
	}()
	detached := make(chan struct{})
	go func() {
		copyUntilDetach(conn, os.Stdin)
		close(detached)
	}()
	select {
	case <-out: // the instance stopped
	case <-detached:
	case <-c.Context.Done(): // SIGTERM, or SIGINT where the terminal is not raw
	}
	return nil
}

// consoleRemote attaches to the console of an instance of a remote,
// through its console websockets, or prints its log, as console does
// here.
func consoleRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	if c.Bool("show-log") {
		log, err := cl.ConsoleLog(c.Context, a[0])
		if err != nil {
			return err
		}
		defer log.Close()
		_, err = io.Copy(os.Stdout, log)
		return err
	}
	// SIGTERM, or SIGINT where the terminal is not raw, detaches rather
	// than cut the websockets.
	ctx := context.WithoutCancel(c.Context)
	typed, w := io.Pipe()
	x, err := cl.Console(ctx, a[0], api.InstanceConsolePost{Type: api.ConsoleTypeConsole}, typed, os.Stdout)
	if errors.Is(err, errkind.Busy) {
		return notRunning(err)
	}
	if err != nil {
		return err
	}
	restore, err := attachTerminal(func(width, height int) { _ = x.Resize(ctx, width, height) })
	if err != nil {
		return err
	}
	defer restore()
	go func() {
		copyUntilDetach(w, os.Stdin)
		w.Close() // which detaches
	}()
	go func() {
		<-c.Context.Done()
		w.Close()
	}()
	return x.Wait(ctx)
}

// notRunning says how to read the console of an instance that does not
// run.
func notRunning(err error) error {
	return fmt.Errorf("%w (--show-log prints its last console log)", err)
}

// attachTerminal readies this terminal, when stdin is one, for a console:
// it tells how to detach, makes the terminal raw, and has resize set the
// console's size to its window's, now and each time it changes; restore
// undoes it.
func attachTerminal(resize func(width, height int)) (restore func(), err error) {
	in := int(os.Stdin.Fd())
	if !term.IsTerminal(in) {
		return func() {}, nil
	}
	fmt.Fprint(os.Stderr, "To detach from the console, press: <ctrl>+a q\r\n")
	if w, h, err := term.GetSize(in); err == nil {
		resize(w, h)
	}
	return rawTerminal(in, resize)
}

// copyUntilDetach sends what is typed to the console until ctrl+a q, or
// until the input ends.
func copyUntilDetach(w io.Writer, r io.Reader) {
	buf := make([]byte, 1024)
	var prevCtrlA bool
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		if prevCtrlA && n > 0 && chunk[0] == 'q' {
			return
		}
		if i := bytes.Index(chunk, []byte{1, 'q'}); i >= 0 {
			_, _ = w.Write(chunk[:i])
			return
		}
		prevCtrlA = n > 0 && chunk[n-1] == 1
		if _, werr := w.Write(chunk); werr != nil {
			return
		}
		if err != nil {
			// Input from a pipe has ended: leave time for the answer.
			time.Sleep(time.Second)
			return
		}
	}
}
