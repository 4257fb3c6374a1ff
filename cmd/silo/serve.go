package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/server"
)

// serveMemoryLimit is the server's soft heap limit.
const serveMemoryLimit = 24 << 20

func serveCommand() *cli.Command {
	return &cli.Command{Name: "serve", Usage: "serve the REST API on the state directory's unix socket", Flags: []cli.Flag{
		&cli.StringFlag{Name: "group", Usage: "group that may use the socket, besides root"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: time.Minute, Usage: "how long SIGTERM waits for the operations in flight"},
		&cli.DurationFlag{Name: "recover-every", Value: time.Minute, Usage: "how often to finish or undo what commands that died left"},
	}, Action: serve}
}

// serve runs the API until SIGTERM or SIGINT, having first finished or
// undone what commands (or an earlier server) left unfinished.
func serve(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	gid := 0
	if name := c.String("group"); name != "" {
		g, err := user.LookupGroup(name)
		if err != nil {
			return errkind.Wrap(errkind.NotFound, "group %q: %w", name, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return fmt.Errorf("group %q: %w", name, err)
		}
	}
	// A soft limit on the heap: a burst of clients that list at once
	// makes garbage that the collector would otherwise let grow to twice
	// the live heap. GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
	stateDir := c.String("state-dir")
	if err := os.MkdirAll(stateDir, 0o711); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	socket := filepath.Join(stateDir, server.SocketName)
	l, lock, err := server.ListenUnix(socket, gid)
	if err != nil {
		return err
	}
	defer lock.Close()
	e, err := engine.Open(c.Context, stateDir)
	if err != nil {
		l.Close()
		return err
	}
	// Recovery may have made pools ready, and holds their locks: the
	// server holds none between requests, so that it never keeps a
	// command from a pool.
	e.Close()
	publishLogs(c, e.Events())
	srv := server.New(e, server.Config{Trusted: server.TrustedByCertificate(e)})
	if err := serveHTTPS(c, srv); err != nil {
		l.Close()
		return err
	}
	fmt.Printf("Serving the API on %s\n", socket)
	if every := c.Duration("recover-every"); every > 0 {
		go srv.RecoverEvery(c.Context, every)
	}
	ctx, cancel := context.WithCancel(c.Context)
	bg := make(chan struct{})
	go func() { defer close(bg); runBackground(ctx, e) }()
	err = srv.ServeUnix(c.Context, l, c.Duration("shutdown-timeout"))
	cancel()
	<-bg
	return err
}

// publishLogs makes the server's log records, from info up (from debug
// with --debug), logging events too, as LXD's /1.0/events serves them.
func publishLogs(c *cli.Context, bus *events.Bus) {
	level := slog.LevelInfo
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewMultiHandler(slog.Default().Handler(), events.NewHandler(bus, level))))
}
