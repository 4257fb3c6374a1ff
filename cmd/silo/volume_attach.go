package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// withAttach gives the volume command c attach and detach.
func withAttach(c *cli.Command) *cli.Command {
	c.Subcommands = append(c.Subcommands, volumeAttachCommands()...)
	return c
}

// volumeAttachCommands are `volume attach` and `volume detach`: a disk
// device that mounts a custom volume in an instance, added or removed,
// here or, with the remote on the pool as lxc takes it, on a remote.
func volumeAttachCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "attach", Usage: "mount a custom volume in an instance, at once if it runs (a disk device, named after the volume by default)",
			ArgsUsage: "[REMOTE:]POOL VOLUME INSTANCE PATH [DEVICE]", Action: onProfiles(4, 5, func(c *cli.Context, h profileHost, a []string) error {
				inst, err := sameHost(c, a[2])
				if err != nil {
					return err
				}
				dev := ""
				if len(a) > 4 {
					dev = a[4]
				}
				dev, d, err := engine.VolumeDisk(a[0], a[1], a[3], dev)
				if err != nil {
					return err
				}
				if err := h.addDevice(c.Context, engine.Owner{Name: inst}, dev, d); err != nil {
					return err
				}
				fmt.Printf("Volume %s/%s attached to instance %s at %s\n", a[0], a[1], inst, a[3])
				return nil
			})},
		{Name: "detach", Usage: "take a custom volume out of an instance, at once if it runs",
			ArgsUsage: "[REMOTE:]POOL VOLUME INSTANCE", Action: onProfiles(3, 3, func(c *cli.Context, h profileHost, a []string) error {
				inst, err := sameHost(c, a[2])
				if err != nil {
					return err
				}
				o := engine.Owner{Name: inst}
				if err := h.editDevices(c.Context, o, engine.DetachingVolume(o, a[0], a[1])); err != nil {
					return err
				}
				fmt.Printf("Volume %s/%s detached from instance %s\n", a[0], a[1], inst)
				return nil
			})},
	}
}

// sameHost is the name of instance ref, which may name the remote of the
// command's first argument, as lxc allows, but no other.
func sameHost(c *cli.Context, ref string) (string, error) {
	if !strings.Contains(ref, ":") {
		return ref, nil
	}
	cfg, err := loadRemotes()
	if err != nil {
		return "", err
	}
	first, r := cfg.Parse(c.Args().First()), cfg.Parse(ref)
	switch {
	case r.Name == ref: // the prefix names no remote: it is part of the name
		return ref, nil
	case r.Remote != first.Remote:
		return "", errkind.Wrap(errkind.Invalid, "%s: the instance must be on the volume's host, %s", ref, first.Remote)
	}
	return r.Name, nil
}
