// Command silo is the command-line interface of the silo engine.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/network/proxy"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/runtime/monitor"
)

// Exit codes, one per kind of error, so that scripts can tell them apart.
var exitCodes = map[error]int{
	errkind.Invalid:       2,
	errkind.NotFound:      3,
	errkind.AlreadyExists: 4,
	errkind.Busy:          5,
	errkind.NoSpace:       6,
	errkind.Unavailable:   7,
}

func main() {
	// The proxy first: one spawned by a monitor inherits its variables.
	if cfg, ok := proxy.FromEnv(); ok {
		os.Exit(proxy.Main(cfg))
	}
	if cfg, ok := monitor.FromEnv(); ok {
		os.Exit(monitor.Main(cfg, engine.MonitorHost))
	}
	if ran, code := container.LockedCloneMain(); ran {
		os.Exit(code)
	}
	if ran, code := container.ExecChildMain(); ran {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp()
	err := app.RunContext(ctx, reorderArgs(app, os.Args))
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "silo: error: %s\n", oneLine(err))
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if code, ok := exitCodes[errkind.Of(err)]; ok {
		return code
	}
	return 1
}

// oneLine keeps an error to one line, whatever its layers wrote, and says
// first that the pool is full when it is: the tool or system call that met
// it rarely says so in these words.
func oneLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if errkind.Of(err) == errkind.NoSpace {
		return "the pool is full: " + msg
	}
	return msg
}

func newApp() *cli.App {
	cmds := append(append(commands(), metricsCommand()), completionCommands()...)
	setUsageErrors(cmds)
	return &cli.App{
		Name:                 "silo",
		Usage:                "system containers on copy-on-write storage",
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Value: engine.DefaultStateDir, EnvVars: []string{"SILO_STATE_DIR"}, Usage: "where silo keeps its state"},
			&cli.BoolFlag{Name: "debug", Usage: "log what silo does"},
		},
		Before: func(c *cli.Context) error {
			level := slog.LevelWarn
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
				Level: level,
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey && len(groups) == 0 {
						return slog.Attr{}
					}
					return a
				},
			})))
			return nil
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
		OnUsageError:   usageError,
		Commands:       cmds,
	}
}

// usageError gives a bad flag the exit code of invalid input.
func usageError(_ *cli.Context, err error, _ bool) error {
	return errkind.Wrap(errkind.Invalid, "%w", err)
}

func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageErrors(c.Subcommands)
	}
}

// withEngine opens the state directory for the length of one action.
func withEngine(fn func(c *cli.Context, e *engine.Engine) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := notRemote(c); err != nil {
			return err
		}
		e, err := engine.Open(c.Context, c.String("state-dir"))
		if err != nil {
			return err
		}
		defer e.Close()
		return fn(c, e)
	}
}

// positional is the positional arguments, with local: taken off the
// reference that carried it.
func positional(c *cli.Context) []string {
	if local, ok := c.Context.Value(localArgs{}).([]string); ok {
		return local
	}
	return c.Args().Slice()
}

// usage is the error of a command given the wrong arguments.
func usage(c *cli.Context) error {
	return errkind.Wrap(errkind.Invalid, "usage: silo %s %s", c.Command.HelpName[len("silo "):], c.Command.ArgsUsage)
}

// args checks the number of positional arguments.
func args(c *cli.Context, min, max int) ([]string, error) {
	a := positional(c)
	if len(a) < min || len(a) > max {
		return nil, usage(c)
	}
	for len(a) < max {
		a = append(a, "")
	}
	return a, nil
}

// reorderArgs moves the flags that follow a command's positional arguments
// in front of them, so that "silo create img x --pool fast" works as LXD
// users type it. Everything after "--" is left alone.
func reorderArgs(app *cli.App, argv []string) []string {
	out := []string{argv[0]}
	rest := argv[1:]
	flags, cmds := app.Flags, app.Commands
	for {
		// Flags of this level, then the name of a subcommand.
		for len(rest) > 0 && strings.HasPrefix(rest[0], "-") && rest[0] != "-" && rest[0] != "--" {
			n := flagLen(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
		}
		if len(rest) == 0 {
			return out
		}
		var sub *cli.Command
		for _, cmd := range cmds {
			if cmd.HasName(rest[0]) {
				sub = cmd
			}
		}
		if sub != nil && sub.SkipFlagParsing { // its arguments are its own
			return append(out, rest...)
		}
		if sub == nil || len(sub.Subcommands) == 0 {
			if sub != nil {
				out, rest = append(out, rest[0]), rest[1:]
				flags = sub.Flags
			}
			break
		}
		out, rest = append(out, rest[0]), rest[1:]
		flags, cmds = sub.Flags, sub.Subcommands
	}
	var opts, pos []string
	for len(rest) > 0 {
		switch {
		case rest[0] == "--":
			pos, rest = append(pos, rest...), nil
		case strings.HasPrefix(rest[0], "-") && rest[0] != "-":
			n := flagLen(flags, rest)
			opts, rest = append(opts, rest[:n]...), rest[n:]
		default:
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	return append(append(out, opts...), pos...)
}

// flagLen says how many arguments the flag at args[0] takes up: two when
// it is a flag that takes a value given as the next argument.
func flagLen(flags []cli.Flag, args []string) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
	if hasValue || len(args) < 2 {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*cli.BoolFlag); isBool {
				return 1
			}
			return 2
		}
	}
	return 1
}
