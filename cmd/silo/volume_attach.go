package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
)

// withAttach gives the volume command c attach and detach.
func withAttach(c *cli.Command) *cli.Command {
	c.Subcommands = append(c.Subcommands, volumeAttachCommands()...)
	return c
}

// volumeAttachCommands are `volume attach` and `volume detach`: a disk
// device that mounts a custom volume in an instance, added or removed.
func volumeAttachCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "attach", Usage: "mount a custom volume in an instance, at once if it runs (a disk device, named after the volume by default)",
			ArgsUsage: "POOL VOLUME INSTANCE PATH [DEVICE]", Action: withEngine(func(c *cli.Context, e *engine.Engine) error {
				if err := notRemoteIn(c, 3); err != nil {
					return err
				}
				a, err := args(c, 4, 5)
				if err != nil {
					return err
				}
				if err := e.AttachVolume(c.Context, a[0], a[1], a[2], a[3], a[4]); err != nil {
					return err
				}
				fmt.Printf("Volume %s/%s attached to instance %s at %s\n", a[0], a[1], a[2], a[3])
				return nil
			})},
		{Name: "detach", Usage: "take a custom volume out of an instance, at once if it runs",
			ArgsUsage: "POOL VOLUME INSTANCE", Action: withEngine(func(c *cli.Context, e *engine.Engine) error {
				if err := notRemoteIn(c, 3); err != nil {
					return err
				}
				a, err := args(c, 3, 3)
				if err != nil {
					return err
				}
				if err := e.DetachVolume(c.Context, a[0], a[1], a[2]); err != nil {
					return err
				}
				fmt.Printf("Volume %s/%s detached from instance %s\n", a[0], a[1], a[2])
				return nil
			})},
	}
}
