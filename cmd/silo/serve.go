package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/server"
)

func serveCommand() *cli.Command {
	return &cli.Command{Name: "serve", Usage: "serve the REST API on the state directory's unix socket", Flags: []cli.Flag{
		&cli.StringFlag{Name: "group", Usage: "group that may use the socket, besides root"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: time.Minute, Usage: "how long SIGTERM waits for the operations in flight"},
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
	defer e.Close()
	fmt.Printf("Serving the API on %s\n", socket)
	ctx, cancel := context.WithCancel(c.Context)
	bg := make(chan struct{})
	go func() { defer close(bg); runBackground(ctx, e) }()
	err = server.New(e, server.Config{}).ServeUnix(c.Context, l, c.Duration("shutdown-timeout"))
	cancel()
	<-bg
	return err
}
