package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// backgroundCommands run the work that `silo serve` does in the
// background, for hosts without a server: from cron or a systemd timer
// each minute (housekeep), and once at boot (autostart).
func backgroundCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "housekeep", Usage: "take the scheduled snapshots that are due (snapshots.schedule) and delete the expired ones; run it each minute", Flags: []cli.Flag{formatFlag,
			// Tests set the clock.
			&cli.StringFlag{Name: "now", Hidden: true, Usage: "the time of the pass (RFC 3339)"},
		}, Action: withEngine(housekeep)},
		{Name: "autostart", Usage: "start the instances that boot.autostart starts at the host's boot, by boot.autostart.priority; run it at boot",
			Flags: []cli.Flag{formatFlag}, Action: withEngine(autostart)},
	}
}

// runBackground does, beside the API, what a host without a server does
// with these commands: autostart once, and a background pass at the start
// and then at the top of each minute, until ctx ends. Each runs on an
// engine of its own, as the server's requests do.
func runBackground(ctx context.Context, e *engine.Engine) {
	pass := func(what string, fn func(*engine.Engine) error) {
		f := e.Fresh()
		defer f.Close()
		if err := fn(f); err != nil && ctx.Err() == nil { // each failure is logged where it happens too
			slog.Error(what, "error", err)
		}
	}
	pass("autostart", func(f *engine.Engine) error { _, err := f.Autostart(ctx); return err })
	for ctx.Err() == nil {
		pass("background pass", func(f *engine.Engine) error { _, err := f.Housekeep(ctx, time.Now()); return err })
		now := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(now.Truncate(time.Minute).Add(time.Minute).Sub(now)):
		}
	}
}

func housekeep(c *cli.Context, e *engine.Engine) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	now := time.Now()
	if s := c.String("now"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return errkind.Wrap(errkind.Invalid, "--now %q: write the time as RFC 3339, such as 2026-03-01T06:00:00Z", s)
		}
		now = t
	}
	r, err := e.Housekeep(c.Context, now)
	if r == nil {
		return err
	}
	var rows [][]string
	for _, s := range r.Expired {
		rows = append(rows, []string{"Snapshot " + s + " expired: deleted"})
	}
	for _, s := range r.ExpiredBackups {
		rows = append(rows, []string{"Backup " + s + " expired: deleted"})
	}
	for _, s := range r.Taken {
		rows = append(rows, []string{"Snapshot " + s + " taken"})
	}
	for _, s := range r.Skipped {
		rows = append(rows, []string{"Instance " + s + " is stopped: its scheduled snapshot skipped"})
	}
	if oerr := output(c, r, nil, rows); oerr != nil {
		return oerr
	}
	return err
}

func autostart(c *cli.Context, e *engine.Engine) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	r, err := e.Autostart(c.Context)
	if r == nil {
		return err
	}
	var rows [][]string
	for _, name := range r.Started {
		rows = append(rows, []string{fmt.Sprintf("Instance %s started", name)})
	}
	if oerr := output(c, r, nil, rows); oerr != nil {
		return oerr
	}
	return err
}
