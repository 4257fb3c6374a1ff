package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

var waitFlag = &cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "return when the instance is ready (systemd: running or degraded; other inits: exec works)"}

func timeoutFlag(d time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Value: d, Usage: "how long to wait (e.g. 30s)"}
}

func launch(c *cli.Context, e *engine.Engine) error {
	inst, err := createInstance(c, e)
	if err != nil {
		return err
	}
	fmt.Printf("Instance %s created on pool %s\n", inst.Name, inst.Pool)
	if err := e.Start(c.Context, inst.Name); err != nil {
		return fmt.Errorf("instance %s was created but did not start: %w", inst.Name, err)
	}
	return waitIfAsked(c, e, inst.Name)
}

func waitIfAsked(c *cli.Context, e *engine.Engine, name string) error {
	if !c.Bool("wait") {
		return nil
	}
	return e.Wait(c.Context, name, c.Duration("timeout"))
}

func start(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if err := e.Start(c.Context, a[0]); err != nil {
		return err
	}
	return waitIfAsked(c, e, a[0])
}

func stop(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	return e.Stop(c.Context, a[0], c.Bool("force"), c.Duration("timeout"))
}

func restart(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if err := e.Restart(c.Context, a[0], c.Bool("force"), c.Duration("timeout")); err != nil {
		return err
	}
	if c.Bool("wait") {
		return e.Wait(c.Context, a[0], engine.DefaultReadyTimeout)
	}
	return nil
}

func wait(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	return e.Wait(c.Context, a[0], c.Duration("timeout"))
}

// execIn runs a command in an instance. Without a terminal, the command
// takes silo's place: its streams are silo's own, and its exit status
// becomes silo's.
func execIn(c *cli.Context, e *engine.Engine) error {
	x, err := execArgs(c, positional(c))
	if err != nil {
		return err
	}
	run, err := e.Exec(c.Context, x.name, engine.ExecOptions{TTY: x.tty, Env: x.env, Cwd: c.String("cwd"), Args: x.args})
	if err != nil {
		return err
	}
	e.Close()
	if !x.tty {
		return run.Replace()
	}
	code, err := run.Run()
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// execCall is a command silo exec runs, here or on a remote.
type execCall struct {
	name string
	args []string
	tty  bool
	env  []string // K=V
}

// execArgs reads silo exec's positional arguments, NAME [--] CMD..., and
// its flags: a terminal with -t, none with -T, else when stdin is one.
func execArgs(c *cli.Context, a []string) (*execCall, error) {
	if len(a) > 1 && a[1] == "--" {
		a = slices.Delete(a, 1, 2)
	}
	if len(a) < 2 || a[0] == "" {
		return nil, errkind.Wrap(errkind.Invalid, "usage: silo exec NAME [--] CMD...")
	}
	tty := c.Bool("tty") || (!c.Bool("no-tty") && term.IsTerminal(int(os.Stdin.Fd())))
	env := c.StringSlice("env")
	if t := os.Getenv("TERM"); tty && t != "" {
		env = append([]string{"TERM=" + t}, env...)
	}
	return &execCall{name: a[0], args: a[1:], tty: tty, env: env}, nil
}

func configSet(c *cli.Context, e *engine.Engine) error {
	a := positional(c)
	if len(a) > 0 && engine.IsServerKey(strings.SplitN(a[0], "=", 2)[0]) {
		return serverConfigSet(c, e, a)
	}
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo config set NAME KEY=VALUE... or silo config set core.KEY VALUE")
	}
	cfg, err := engine.ParseConfig(a[1:])
	if err != nil {
		return err
	}
	return e.SetConfig(c.Context, a[0], cfg, nil)
}

func configUnset(c *cli.Context, e *engine.Engine) error {
	a := positional(c)
	if len(a) > 0 && engine.IsServerKey(a[0]) {
		return serverConfigUnset(c, e, a)
	}
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo config unset NAME KEY... or silo config unset core.KEY...")
	}
	return e.SetConfig(c.Context, a[0], nil, a[1:])
}
