package main

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// metricsCommand prints what the API serves at /1.0/metrics: for a node
// exporter's textfile collector, or a look by hand; a remote's through
// its API.
func metricsCommand() *cli.Command {
	return &cli.Command{Name: "metrics", Usage: "print the CPU, memory, disk, network and process figures of the running instances, in the Prometheus text format",
		ArgsUsage: "[REMOTE:]",
		Action: onRemote(0, func(c *cli.Context, e *engine.Engine) error {
			if err := noneButRemote(args(c, 0, 1)); err != nil {
				return err
			}
			return e.Metrics(c.Context, os.Stdout)
		}, func(c *cli.Context, cl *client.Client, a []string) error {
			if err := noneButRemote(exactly(c, a, 0, 1)); err != nil {
				return err
			}
			r, err := cl.Metrics(c.Context)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(os.Stdout, r)
			return err
		})}
}

// noneButRemote refuses an argument besides "REMOTE:", which the remote's
// parsing leaves as "".
func noneButRemote(a []string, err error) error {
	if err != nil || a[0] != "" {
		return errkind.Wrap(errkind.Invalid, "usage: silo metrics [REMOTE:]")
	}
	return nil
}
