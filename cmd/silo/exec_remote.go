package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/errkind"
)

// execRemote runs a command in an instance of a remote, through its
// exec websockets: with a terminal, this one is made raw and its size
// follows the window's; without, the signals silo gets are passed on.
// silo exits with the command's exit code, as it does here.
func execRemote(c *cli.Context, cl *client.Client, a []string) error {
	x, err := execArgs(c, a)
	if err != nil {
		return err
	}
	code, err := relayExec(c, cl, x)
	if err != nil {
		return err
	}
	os.Exit(code) // once the terminal is restored
	return nil
}

// relayExec runs x on the remote, and returns its exit code.
func relayExec(c *cli.Context, cl *client.Client, x *execCall) (int, error) {
	env := map[string]string{}
	for _, kv := range x.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return 0, errkind.Wrap(errkind.Invalid, "--env %q: K=V is needed", kv)
		}
		env[k] = v
	}
	req := api.InstanceExecPost{Command: x.args, Environment: env, Interactive: x.tty, Cwd: c.String("cwd")}
	in := int(os.Stdin.Fd())
	raw := x.tty && term.IsTerminal(in)
	if raw {
		req.Width, req.Height, _ = term.GetSize(in)
	}
	// Interrupts are the command's, not the end of silo's wait for it.
	ctx := context.WithoutCancel(c.Context)
	run, err := cl.Exec(ctx, x.name, req, client.ExecStreams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return 0, err
	}
	if raw {
		restore, err := rawTerminal(in, func(w, h int) { _ = run.Resize(ctx, w, h) })
		if err != nil {
			return 0, err
		}
		defer restore()
	} else {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sigs)
		go func() {
			for sig := range sigs {
				_ = run.Signal(ctx, sig.(syscall.Signal))
			}
		}()
	}
	return run.Wait(ctx)
}

// rawTerminal makes the terminal fd raw, and has resize follow the size
// of its window; restore undoes both.
func rawTerminal(fd int, resize func(width, height int)) (restore func(), err error) {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGWINCH)
	go func() {
		for range sigs {
			if w, h, err := term.GetSize(fd); err == nil {
				resize(w, h)
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(sigs)
		_ = term.Restore(fd, old)
	}, nil
}
