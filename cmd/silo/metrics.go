package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
)

// metricsCommand prints what the API serves at /1.0/metrics: for a node
// exporter's textfile collector, or a look by hand.
func metricsCommand() *cli.Command {
	return &cli.Command{Name: "metrics", Usage: "print the CPU, memory, disk, network and process figures of the running instances, in the Prometheus text format",
		Action: withEngine(func(c *cli.Context, e *engine.Engine) error {
			if _, err := args(c, 0, 0); err != nil {
				return err
			}
			return e.Metrics(c.Context, os.Stdout)
		})}
}
